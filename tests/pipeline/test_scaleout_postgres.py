"""The whole pipeline against a real PostgreSQL: Dagster instance storage and MLflow backend.

Starts a throwaway PostgreSQL cluster (Debian's `postgresql` package), puts
dagster.postgres.yaml into DAGSTER_HOME, runs the `m5_pipeline` job on tiny generated data and
reads the runs, events and MLflow entries back from Postgres itself.
"""

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

FAST_TRAINING = {
    "ops": {
        "demand_model": {
            "config": {
                "train_start_d": 1,
                "recent_folds": 1,
                "seasonal_lags": [],
                "num_boost_round": 10,
                "num_threads": 1,
            }
        }
    }
}
"""Tiny data (400 days): train from day 1, one backtest fold, few trees."""


@pytest.fixture
def pg_instance_home(pg: Any, home: Path, raw_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME holding dagster.postgres.yaml, its env vars set; MLflow on Postgres too."""
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.postgres.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    for key, value in pg.env("dagster").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg.url("mlflow"))
    # A database tracking URI has no natural artifact folder: create the experiment with one
    # under FORECASTING_HOME, as an operator would (`mlflow experiments create -l ...`).
    from mlflow import MlflowClient

    MlflowClient(pg.url("mlflow")).create_experiment(
        "m5-forecasting", artifact_location=(home / "mlartifacts").as_uri()
    )
    return dagster_home


def _query(pg: Any, db: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg2

    conn = psycopg2.connect(pg.dsn(db))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_pipeline_on_postgres_instance(pg: Any, pg_instance_home: Path, home: Path) -> None:
    import dagster as dg
    from mlflow import MlflowClient

    from forecasting_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = defs.resolve_job_def("m5_pipeline").execute_in_process(
            instance=instance, run_config=FAST_TRAINING
        )
        assert result.success
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        materialized = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if instance.get_latest_materialization_event(key) is not None
        }
        assert {"sales_long", "features", "demand_model", "batch_forecasts"} <= materialized

    # The same facts, read straight from Postgres (not through Dagster's caches).
    rows = _query(pg, "dagster", "SELECT run_id, status FROM runs")
    assert rows == [(result.run_id, "SUCCESS")]
    events = _query(
        pg,
        "dagster",
        "SELECT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'",
    )
    assert '["features"]' in {r[0] for r in events}

    client = MlflowClient(pg.url("mlflow"))
    experiment = client.get_experiment_by_name("m5-forecasting")
    assert experiment is not None
    mlflow_runs = client.search_runs([experiment.experiment_id])
    assert mlflow_runs and "wrmsse" in mlflow_runs[0].data.metrics
    champion = client.get_model_version_by_alias("m5_demand_model", "champion")
    assert champion.run_id in {r.info.run_id for r in mlflow_runs}
    assert _query(pg, "mlflow", "SELECT name FROM registered_models") == [("m5_demand_model",)]
    assert (home / "exports" / "forecasts.parquet").exists()
