"""Read-only access to the MLflow tracking store: the training runs and their artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from forecasting_assets.contracts import EXPERIMENT_NAME
from forecasting_assets.store.model_registry import mlflow_client, tracking_uri


def list_training_runs() -> pl.DataFrame:
    """Runs of experiment ``m5-forecasting``, newest first (empty frame if none).

    Columns: run_id, run_name, status, start_time, end_time (UTC datetimes), then
    ``metrics.<name>`` (Float64), ``params.<name>`` and ``tags.<name>`` (String).
    """
    empty = pl.DataFrame(
        schema={
            "run_id": pl.String,
            "run_name": pl.String,
            "status": pl.String,
            "start_time": pl.Datetime("ms", "UTC"),
            "end_time": pl.Datetime("ms", "UTC"),
        }
    )
    client = mlflow_client()
    if client is None:
        return empty
    exp = client.get_experiment_by_name(EXPERIMENT_NAME)
    if exp is None:
        return empty
    runs = client.search_runs([exp.experiment_id], order_by=["attribute.start_time DESC"])
    if not runs:
        return empty
    metric_names = sorted({k for r in runs for k in r.data.metrics})
    param_names = sorted({k for r in runs for k in r.data.params})
    tag_names = sorted({k for r in runs for k in r.data.tags if not k.startswith("mlflow.")})
    data: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "run_name": [r.info.run_name for r in runs],
        "status": [r.info.status for r in runs],
        "start_time": [r.info.start_time for r in runs],
        "end_time": [r.info.end_time for r in runs],
    }
    for m in metric_names:
        data[f"metrics.{m}"] = [r.data.metrics.get(m) for r in runs]
    for p in param_names:
        data[f"params.{p}"] = [r.data.params.get(p) for r in runs]
    for t in tag_names:
        data[f"tags.{t}"] = [r.data.tags.get(t) for r in runs]
    schema: dict[str, Any] = {
        "run_id": pl.String,
        "run_name": pl.String,
        "status": pl.String,
        "start_time": pl.Int64,
        "end_time": pl.Int64,
    }
    schema |= {f"metrics.{m}": pl.Float64 for m in metric_names}
    schema |= {f"params.{p}": pl.String for p in param_names}
    schema |= {f"tags.{t}": pl.String for t in tag_names}
    df = pl.DataFrame(data, schema=schema)
    return df.with_columns(
        pl.col("start_time", "end_time").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    )


def load_run_json_artifact(run_id: str, artifact_path: str) -> Any | None:
    """A JSON artifact of an MLflow run (e.g. ``feature_importance.json``), ``None`` if absent."""
    if not run_id or mlflow_client() is None:
        return None
    import tempfile

    from mlflow import artifacts
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=artifact_path,
                dst_path=tmp,
                tracking_uri=uri,
                registry_uri=uri,
            )
        except (MlflowException, OSError):
            return None
        try:
            return json.loads(Path(local).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
