"""Readers of the materialized exports (and the features table) under ``FORECASTING_HOME``.

Every reader returns ``None`` (or an empty list) when its file does not exist yet: "not
materialized yet" is a normal state, never an exception. Paths come from
:func:`forecasting_assets.settings.get_settings`, read on every call so that tests and processes
can point ``FORECASTING_HOME`` elsewhere.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from forecasting_assets.contracts import (
    ALERTS_FILE,
    BACKTEST_METRICS_FILE,
    DRIFT_REPORT_FILE,
    FEATURE_CATALOG_FILE,
    FEATURE_IMPORTANCE_FILE,
    FEATURES_FILE,
    FORECASTS_AGGREGATED_FILE,
    FORECASTS_FILE,
    INTERVAL_COVERAGE_FILE,
    INVENTORY_PLAN_FILE,
    INVENTORY_VALIDATION_FILE,
    VALIDATION_REPORT_FILE,
)
from forecasting_assets.settings import get_settings

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- paths
def exports_dir() -> Path:
    """Folder with the user-facing exports (``<FORECASTING_HOME>/exports``)."""
    return Path(get_settings().exports_dir)


def assets_dir() -> Path:
    """Folder with the Dagster asset storage (``<FORECASTING_HOME>/assets``)."""
    return Path(get_settings().assets_dir)


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


def load_inventory_validation() -> dict | None:
    """Simulated vs target service levels of the inventory policy
    (``inventory_validation.json``) or ``None``."""
    data = _read_json(exports_dir() / INVENTORY_VALIDATION_FILE)
    return data if isinstance(data, dict) else None
