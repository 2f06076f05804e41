"""The one home of the names every part relies on: assets, exports, MLflow names, the horizon.

The pipeline writes, and the API and the dashboard read, through these names; change one here
and everything follows (see ``../shared/ARCHITECTURE.md`` for the user-facing contracts).
Pure: no Dagster, FastAPI or Streamlit imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HORIZON = 28
"""Days forecast after the last day in the sales file."""

# ----------------------------------------------------------------------------- MLflow
EXPERIMENT_NAME = "m5-forecasting"
"""The MLflow experiment every training run logs to."""
MODEL_NAME = "m5_demand_model"
"""The registered model name in the MLflow registry."""
CHAMPION_ALIAS = "champion"
"""The registry alias of the version that serves forecasts."""
MODEL_KEY = "lightgbm"
"""The model's name in metric tables and metric keys (next to the baselines' names)."""
OUT_OF_FOLD_KEY = f"{MODEL_KEY}_out_of_fold"
"""The model scored on each backtest fold with its trees and weights chosen on the other folds."""

# ----------------------------------------------------------------------------- M5 levels
M5_LEVELS: dict[str, tuple[str, ...]] = {
    "total": (),
    "state": ("state_id",),
    "store": ("store_id",),
    "cat": ("cat_id",),
    "dept": ("dept_id",),
    "state_cat": ("state_id", "cat_id"),
    "state_dept": ("state_id", "dept_id"),
    "store_cat": ("store_id", "cat_id"),
    "store_dept": ("store_id", "dept_id"),
    "item": ("item_id",),
    "item_state": ("item_id", "state_id"),
    "item_store": ("item_id", "store_id"),
}
"""The 12 M5 aggregation levels: name -> grouping columns (() = grand total)."""
BOTTOM_LEVEL = "item_store"

# ----------------------------------------------------------------------------- files
# Materialized assets, under ``<FORECASTING_HOME>/assets``.
SALES_LONG_FILE = "sales_long.parquet"
RAW_CALENDAR_FILE = "raw_calendar.parquet"
FEATURES_FILE = "features.parquet"
FEATURES_PARTITION_DIR = "features"
"""Scale-out: one ``<store>.parquet`` per store partition of ``features``."""

# User-facing exports, under ``<FORECASTING_HOME>/exports``, each rewritten atomically.
FORECASTS_FILE = "forecasts.parquet"
FORECASTS_AGGREGATED_FILE = "forecasts_aggregated.parquet"
INVENTORY_PLAN_FILE = "inventory_plan.parquet"
INVENTORY_VALIDATION_FILE = "inventory_validation.json"
BACKTEST_METRICS_FILE = "backtest_metrics.parquet"
BACKTEST_FORECASTS_FILE = "backtest_forecasts.parquet"
"""The model's point forecast of every series x fold day (id, fold, d, forecast, actual)."""
INTERVAL_COVERAGE_FILE = "interval_coverage.parquet"
FEATURE_IMPORTANCE_FILE = "feature_importance.parquet"
FEATURE_CATALOG_FILE = "feature_catalog.json"
DRIFT_REPORT_FILE = "drift_report.json"
VALIDATION_REPORT_FILE = "validation_report.json"
ALERTS_FILE = "alerts.jsonl"
FORECAST_ARCHIVE_DIR = "forecast_archive"
"""Earlier forecasts kept for realized-accuracy scoring."""
PIPELINE_METRICS_FILE = "pipeline_metrics.prom"
"""Prometheus textfile with the pipeline's accuracy and drift figures."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``sqlite:////abs.db`` -> ``/abs.db``), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///")).resolve()


# ----------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class CheckOutcome:
    """The result of one named invariant: passed, a message and small metadata."""

    passed: bool
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)
