-- One Postgres server, two databases: Dagster's instance storage and MLflow's backend store.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
