"""Read-only access to the materialized exports and the champion model.

Shared by the REST API and the dashboard. Every reader returns ``None`` (or an empty
frame / list) when its file or registry entry does not exist yet: "not materialized
yet" is a normal state, never an exception. Paths come from
:func:`forecasting_assets.settings.get_settings`, read on every call so that tests and
processes can point ``FORECASTING_HOME`` / ``MLFLOW_TRACKING_URI`` elsewhere.

MLflow is imported lazily: importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import polars as pl

from forecasting_assets.contracts import (  # noqa: F401 - re-exported for readers
    ALERTS_FILE,
    BACKTEST_METRICS_FILE,
    CHAMPION_ALIAS,
    DRIFT_REPORT_FILE,
    EXPERIMENT_NAME,
    FEATURE_CATALOG_FILE,
    FEATURE_IMPORTANCE_FILE,
    FEATURES_FILE,
    FORECASTS_AGGREGATED_FILE,
    FORECASTS_FILE,
    INTERVAL_COVERAGE_FILE,
    INVENTORY_PLAN_FILE,
    MODEL_NAME,
    VALIDATION_REPORT_FILE,
    sqlite_path,
)
from forecasting_assets.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.pyfunc import PyFuncModel

logger = logging.getLogger(__name__)


class RegistryUnavailable(RuntimeError):
    """The MLflow registry exists but cannot be read (locked, corrupt, server down)."""


# --------------------------------------------------------------------------- paths
def exports_dir() -> Path:
    """Folder with the user-facing exports (``<FORECASTING_HOME>/exports``)."""
    return Path(get_settings().exports_dir)


def assets_dir() -> Path:
    """Folder with the Dagster asset storage (``<FORECASTING_HOME>/assets``)."""
    return Path(get_settings().assets_dir)


def tracking_uri() -> str:
    """The one MLflow tracking URI shared by pipeline, API and dashboard."""
    return str(get_settings().mlflow_tracking_uri)


def features_path() -> Path:
    """Path of the features table written by the ``features`` asset."""
    return assets_dir() / FEATURES_FILE


def file_version(path: Path | str) -> str | None:
    """Cheap change token of a file (``mtime_ns-size``), ``None`` if it does not exist.

    Exports are replaced by atomic rename, so a new file always gets a new token.
    """
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}-{st.st_size}"


# --------------------------------------------------------------------------- files
def _read_parquet(name: str) -> pl.DataFrame | None:
    path = exports_dir() / name
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:  # replaced between the check and the read
        return None


def _read_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def load_forecasts() -> pl.DataFrame | None:
    """Series × day forecasts (``forecasts.parquet``) or ``None``."""
    return _read_parquet(FORECASTS_FILE)


def load_forecasts_aggregated() -> pl.DataFrame | None:
    """Forecasts summed by level (``forecasts_aggregated.parquet``) or ``None``."""
    return _read_parquet(FORECASTS_AGGREGATED_FILE)


def load_inventory_plan() -> pl.DataFrame | None:
    """Inventory recommendations per series (``inventory_plan.parquet``) or ``None``."""
    return _read_parquet(INVENTORY_PLAN_FILE)


def load_backtest_metrics() -> pl.DataFrame | None:
    """WRMSSE per model × fold × level (``backtest_metrics.parquet``) or ``None``."""
    return _read_parquet(BACKTEST_METRICS_FILE)


def load_interval_coverage() -> pl.DataFrame | None:
    """Empirical quantile coverage (``interval_coverage.parquet``) or ``None``."""
    return _read_parquet(INTERVAL_COVERAGE_FILE)


def load_feature_importance() -> pl.DataFrame | None:
    """Feature importance of the forecasting model (``feature_importance.parquet``) or ``None``."""
    return _read_parquet(FEATURE_IMPORTANCE_FILE)


def load_drift_report() -> dict | None:
    """Drift report (``drift_report.json``) or ``None``."""
    data = _read_json(exports_dir() / DRIFT_REPORT_FILE)
    return data if isinstance(data, dict) else None


def load_feature_catalog() -> dict | None:
    """Feature catalog: ``exports/feature_catalog.json``, else ``assets/feature_catalog.json``."""
    for path in (exports_dir() / FEATURE_CATALOG_FILE, assets_dir() / FEATURE_CATALOG_FILE):
        data = _read_json(path)
        if isinstance(data, dict):
            return data
        if isinstance(data, list):  # a list of feature entries
            return {"features": data}
    return None


def load_alerts() -> list[dict]:
    """Run-failure alerts (``alerts.jsonl``), oldest first; malformed lines are skipped."""
    path = exports_dir() / ALERTS_FILE
    if not path.is_file():
        return []
    alerts: list[dict] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("skipping malformed line in %s", path)
            continue
        if isinstance(item, dict):
            alerts.append(item)
    return alerts


def load_validation_report() -> dict | None:
    """Latest data validation results (``validation_report.json``) or ``None``."""
    data = _read_json(exports_dir() / VALIDATION_REPORT_FILE)
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- MLflow
def registry_exists() -> bool:
    """False for a SQLite/file store that does not exist (yet): it is never created here."""
    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is not None:
        return db.is_file()
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path or uri).exists()
    return True  # remote server: ask it


def _client() -> Any | None:
    if not registry_exists():
        return None
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _parse_param(value: str) -> Any:
    """Params are strings in MLflow; decode JSON ones (lists, numbers) when possible."""
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def _champion_version(client: Any) -> str | None:
    """The one champion lookup (:func:`registry.get_champion`), telling "no alias" from
    "registry unreadable" (:class:`RegistryUnavailable`)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    from forecasting_assets.modeling import registry

    try:
        champ = registry.get_champion(client, MODEL_NAME)
        if champ is not None:
            return champ.version
        client.get_registered_model(MODEL_NAME)  # no alias: is the registry readable?
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise RegistryUnavailable(f"{type(exc).__name__}: {exc.message}") from exc
    except Exception as exc:  # sqlite / network errors that MLflow does not wrap
        raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return None


def champion_version() -> str | None:
    """Version of the champion (one registry call), ``None`` if no registry or no alias yet.

    Raises :class:`RegistryUnavailable` when the registry exists but cannot be read.
    """
    client = _client()
    return None if client is None else _champion_version(client)


def champion_info() -> dict | None:
    """Version, run_id, registration time, params (JSON-decoded) and metrics of the champion.

    Keys: name, version, run_id, registered_at (ISO), params, metrics, tags, source.
    ``None`` when there is no registry or no version with the alias yet.
    """
    client = _client()
    if client is None:
        return None
    version = _champion_version(client)
    return None if version is None else _version_info(client, version)


def version_info(version: str) -> dict | None:
    """The facts of :func:`champion_info` for any registered version, ``None`` if no registry."""
    client = _client()
    return None if client is None else _version_info(client, version)


def model_versions() -> list[str]:
    """Registered versions of the model, newest first (empty without a registry)."""
    client = _client()
    if client is None:
        return []
    found = client.search_model_versions(f"name='{MODEL_NAME}'")
    return [str(v) for v in sorted((int(mv.version) for mv in found), reverse=True)]


def _version_info(client: Any, version: str) -> dict:
    from datetime import UTC, datetime

    from mlflow.exceptions import MlflowException

    mv = client.get_model_version(MODEL_NAME, version)
    params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
        except MlflowException:
            run = None
        if run is not None:
            params = {k: _parse_param(v) for k, v in run.data.params.items()}
            metrics = dict(run.data.metrics)
            tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    registered = (
        datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat()
        if mv.creation_timestamp
        else None
    )
    return {
        "name": MODEL_NAME,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "registered_at": registered,
        "params": params,
        "metrics": metrics,
        "tags": tags,
        "source": mv.source,
    }


def download_model(version: str, dst: Path) -> Path:
    """Copy the files of registered version ``version`` into ``dst`` (no model code runs)."""
    from mlflow import artifacts

    client = _client()
    if client is None:
        raise FileNotFoundError(f"no MLflow registry at {tracking_uri()}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    dst.mkdir(parents=True, exist_ok=True)
    source = client.get_model_version_download_uri(MODEL_NAME, version)
    local = artifacts.download_artifacts(
        artifact_uri=source, dst_path=str(dst), tracking_uri=tracking_uri()
    )
    return Path(local)


def load_champion_model() -> PyFuncModel | None:
    """The champion as an MLflow pyfunc model, ``None`` if there is none."""
    loaded = load_champion()
    return loaded[1] if loaded else None


def load_champion() -> tuple[dict, PyFuncModel] | None:
    """``(champion_info, pyfunc model)`` of the *same* version (no race with a re-alias).

    Loads native model code in this process: the API verifies a version in a child process
    first (:mod:`forecasting_api.services.model_bundle`).
    """
    info = champion_info()
    if info is None:
        return None
    import mlflow.pyfunc

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(
        f"models:/{MODEL_NAME}/{info['version']}", suppress_warnings=True
    )
    return info, model


def champion_feature_columns(info: dict, model: Any | None = None) -> list[str] | None:
    """Model input columns: run param ``feature_columns`` (JSON list), else the signature."""
    cols = (info.get("params") or {}).get("feature_columns")
    if isinstance(cols, str):
        cols = _parse_param(cols)
    if isinstance(cols, list) and cols:
        return [str(c) for c in cols]
    if model is not None:  # a pyfunc model or its ``mlflow.models.Model`` metadata
        meta = getattr(model, "metadata", model)
        schema = meta.get_input_schema() if meta is not None else None
        if schema is not None and schema.has_input_names():
            return list(schema.input_names())
    return None


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
    client = _client()
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
    if not run_id or _client() is None:
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


def load_inventory_validation() -> dict | None:
    """Simulated vs target service levels of the inventory policy
    (``inventory_validation.json``) or ``None``."""
    from forecasting_assets.contracts import INVENTORY_VALIDATION_FILE

    data = _read_json(exports_dir() / INVENTORY_VALIDATION_FILE)
    return data if isinstance(data, dict) else None


def list_model_versions() -> list[dict]:
    """Registered versions of the model, newest first (``[]`` without a registry).

    Keys: version (int), registered_at (UTC datetime or None), run_id, status, aliases (list).
    """
    from datetime import UTC, datetime

    from mlflow.exceptions import MlflowException

    client = _client()
    if client is None:
        return []
    try:
        aliases = client.get_registered_model(MODEL_NAME).aliases
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    except MlflowException:
        return []
    out = [
        {
            "version": int(mv.version),
            "registered_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC)
            if mv.creation_timestamp
            else None,
            "run_id": mv.run_id,
            "status": mv.status,
            "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
        }
        for mv in versions
    ]
    return sorted(out, key=lambda v: v["version"], reverse=True)
