"""MLflow for the dashboard: training runs with their metrics, registered versions, the champion.

Read through ``forecasting_assets.store`` (the project's one champion lookup, shared with the
API), cached on the tracking URI and, for a SQLite store, the database file's version. ``mlflow``
is imported by the store on first use (~3-4 s); ``dashboard/app.py`` preloads it in the background
when the server starts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from dashboard.paths import TTL
from forecasting_assets import contracts, store


def tracking_uri() -> str:
    return store.tracking_uri()


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=8)
def _mlflow_info(uri: str, version: str | None) -> dict[str, Any]:
    del uri, version  # cache keys only
    versions = store.list_model_versions()
    champ = store.champion_info()
    runs = store.list_training_runs()
    version_of_run = {v["run_id"]: v["version"] for v in versions}
    metrics_of_run: dict[str, dict[str, float]] = {}
    out_runs = []
    for row in runs.to_dicts():
        metrics = {
            k.removeprefix("metrics."): v
            for k, v in row.items()
            if k.startswith("metrics.") and v is not None
        }
        metrics_of_run[row["run_id"]] = metrics
        out_runs.append(
            {
                **{k: row[k] for k in ("run_id", "run_name", "status", "start_time", "end_time")},
                "metrics": metrics,
                "model_version": version_of_run.get(row["run_id"]),
            }
        )
    for v in versions:
        v["metrics"] = metrics_of_run.get(v["run_id"], {})
    champion = None
    if champ is not None:
        created = champ.get("registered_at")
        champion = {
            "version": int(champ["version"]),
            "registered_at": dt.datetime.fromisoformat(created) if created else None,
            "run_id": champ.get("run_id"),
            "metrics": champ.get("metrics", {}),
        }
    return {"runs": out_runs, "versions": versions, "champion": champion}


def mlflow_info() -> dict[str, Any]:
    """{'runs': [...], 'versions': [...], 'champion': {...} | None} from the tracking store.

    Runs (newest first): run_id, run_name, status, start_time, end_time, metrics, model_version.
    Versions (newest first): version, registered_at, run_id, status, aliases, metrics.
    """
    uri = tracking_uri()
    db = contracts.sqlite_path(uri)
    if db is None:
        return _mlflow_info(uri, None)
    version = store.file_version(db)
    if version is None:
        return {"runs": [], "versions": [], "champion": None}
    return _mlflow_info(uri, version)
