"""MLflow as a Dagster resource (resource key ``"mlflow"``).

One tracking URI for the pipeline, the API and the dashboard: by default
``forecasting_assets.settings.get_settings().mlflow_tracking_uri`` (SQLite under
``FORECASTING_HOME``), read when the resource is used. Runs are opened with :meth:`start_run`, a
context manager that always ends the run (FINISHED, or FAILED when the body raises), whether the
asset runs from the CLI, the UI or a schedule.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import dagster as dg

from forecasting_assets.settings import get_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

EXPERIMENT = "m5-forecasting"


def _default_artifact_root(uri: str) -> str | None:
    """Artifacts next to a SQLite DB (``<dir of db>/mlartifacts``); None for servers."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(uri.removeprefix("sqlite:///")).resolve()  # sqlite:////abs.db -> /abs.db
    return (db.parent / "mlartifacts").as_uri()


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking + registry access with guaranteed run cleanup."""

    tracking_uri: str | None = None
    """Tracking URI; None = settings.mlflow_tracking_uri (env MLFLOW_TRACKING_URI or SQLite)."""
    experiment_name: str = EXPERIMENT
    artifact_root: str | None = None
    """Artifact location of a newly created experiment; None = ``mlartifacts`` beside the DB."""

    def resolved_uri(self) -> str:
        """The tracking URI this resource uses now."""
        return self.tracking_uri or get_settings().mlflow_tracking_uri

    def setup(self) -> str:
        """Point mlflow at the store and make sure the experiment exists; returns its id."""
        client = self.client()
        uri = self.resolved_uri()
        exp = client.get_experiment_by_name(self.experiment_name)
        if exp is not None:
            return exp.experiment_id
        location = self.artifact_root or _default_artifact_root(uri)
        try:
            return client.create_experiment(self.experiment_name, artifact_location=location)
        except Exception:  # created concurrently by another process
            exp = client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                raise
            return exp.experiment_id

    def client(self) -> MlflowClient:
        """A client on this resource's tracking and registry URI (also set as mlflow's default)."""
        import mlflow  # deferred: importing mlflow takes seconds

        uri = self.resolved_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    @contextlib.contextmanager
    def start_run(
        self, run_name: str | None = None, tags: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """Open a run that is always ended: FINISHED on success, FAILED if the body raises."""
        import mlflow

        experiment_id = self.setup()
        stale = mlflow.active_run()
        if stale is not None:  # left open by an earlier crash in this process
            logger.warning("ending stale MLflow run %s", stale.info.run_id)
            mlflow.end_run(status="KILLED")
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
        try:
            yield run
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        else:
            mlflow.end_run(status="FINISHED")
