"""Read-only access to the MLflow registry: the champion, its versions and their files.

Every reader returns ``None`` (or an empty list) when the registry does not exist yet; a
registry that exists but cannot be read raises :class:`RegistryUnavailable`. The tracking URI is
read from :func:`forecasting_assets.settings.get_settings` on every call. MLflow is imported
lazily: importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from forecasting_assets.contracts import MODEL_NAME, sqlite_path
from forecasting_assets.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.pyfunc import PyFuncModel


class RegistryUnavailable(RuntimeError):
    """The MLflow registry exists but cannot be read (locked, corrupt, server down)."""


def tracking_uri() -> str:
    """The one MLflow tracking URI shared by pipeline, API and dashboard."""
    return str(get_settings().mlflow_tracking_uri)


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


def mlflow_client() -> Any | None:
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
    client = mlflow_client()
    return None if client is None else _champion_version(client)


def champion_info() -> dict | None:
    """Version, run_id, registration time, params (JSON-decoded) and metrics of the champion.

    Keys: name, version, run_id, registered_at (ISO), params, metrics, tags, source.
    ``None`` when there is no registry or no version with the alias yet.
    """
    client = mlflow_client()
    if client is None:
        return None
    version = _champion_version(client)
    return None if version is None else _version_info(client, version)


def version_info(version: str) -> dict | None:
    """The facts of :func:`champion_info` for any registered version, ``None`` if no registry."""
    client = mlflow_client()
    return None if client is None else _version_info(client, version)


def model_versions() -> list[str]:
    """Registered versions of the model, newest first (empty without a registry)."""
    client = mlflow_client()
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

    client = mlflow_client()
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


def list_model_versions() -> list[dict]:
    """Registered versions of the model, newest first (``[]`` without a registry).

    Keys: version (int), registered_at (UTC datetime or None), run_id, status, aliases (list).
    """
    from datetime import UTC, datetime

    from mlflow.exceptions import MlflowException

    client = mlflow_client()
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
