"""Pipeline-test fixtures: a ready MLflow store per test (copied from one migrated template,
since creating and migrating a SQLite store costs seconds)."""

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow

    db = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()  # creates + migrates
    return db


@pytest.fixture
def mlflow_store(home: Path, mlflow_template: Path) -> str:
    """``home``'s MLflow store, already migrated; returns its tracking URI."""
    shutil.copy(mlflow_template, home / "mlflow.db")
    return f"sqlite:///{home / 'mlflow.db'}"
