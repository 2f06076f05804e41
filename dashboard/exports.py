"""Cached readers of the pipeline's exports (``<FORECASTING_HOME>/exports``).

Every reader is keyed on its file's version, so a new materialization shows up on the next rerun,
and expires after ``TTL`` seconds. Large frames use ``st.cache_resource`` (shared, not copied on
each access: the pages never mutate them); small results use ``st.cache_data``. The small exports
are read through ``forecasting_assets.store`` (shared with the API); the forecasts are read here
with only the columns the pages use (a series' quantiles on demand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from dashboard.paths import TTL, export_path
from forecasting_assets import contracts, store

LEVELS = {
    "Total": "total",
    "State": "state",
    "Store": "store",
    "Category": "cat",
    "Department": "dept",
}
"""Dashboard level -> M5 level (``contracts.M5_LEVELS``) of ``forecasts_aggregated``."""
SERIES_LEVEL = "Item × store"
FORECAST_CORE = [
    "id", "item_id", "store_id", "date", "predicted_sales", "lower", "upper", "model_version",
]  # fmt: skip
"""The columns of ``forecasts.parquet`` the pages use (8 of 21)."""


def level_column(level: str) -> str | None:
    """The hierarchy column of a dashboard level (None for the total)."""
    cols = contracts.M5_LEVELS[LEVELS[level]]
    return cols[0] if cols else None


def _version(name: str) -> str | None:
    return store.file_version(export_path(name))


# ----------------------------------------------------------------------------- small exports
_LOADERS: dict[str, Callable[[], Any]] = {
    contracts.FORECASTS_AGGREGATED_FILE: store.load_forecasts_aggregated,
    contracts.INVENTORY_PLAN_FILE: store.load_inventory_plan,
    contracts.BACKTEST_METRICS_FILE: store.load_backtest_metrics,
    contracts.INTERVAL_COVERAGE_FILE: store.load_interval_coverage,
    contracts.FEATURE_IMPORTANCE_FILE: store.load_feature_importance,
}


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=16)
def _frame(name: str, version: str) -> pl.DataFrame | None:
    del version  # cache key only
    df = _LOADERS[name]()
    return df if df is not None and df.height else None


def _export(name: str) -> pl.DataFrame | None:
    version = _version(name)
    return None if version is None else _frame(name, version)


def forecasts_aggregated() -> pl.DataFrame | None:
    return _export(contracts.FORECASTS_AGGREGATED_FILE)


def inventory_plan() -> pl.DataFrame | None:
    return _export(contracts.INVENTORY_PLAN_FILE)


def backtest_metrics() -> pl.DataFrame | None:
    return _export(contracts.BACKTEST_METRICS_FILE)


def interval_coverage() -> pl.DataFrame | None:
    return _export(contracts.INTERVAL_COVERAGE_FILE)


def feature_importance() -> pl.DataFrame | None:
    return _export(contracts.FEATURE_IMPORTANCE_FILE)


_JSON_LOADERS: dict[str, Callable[[], Any]] = {
    contracts.DRIFT_REPORT_FILE: store.load_drift_report,
    contracts.VALIDATION_REPORT_FILE: store.load_validation_report,
    contracts.INVENTORY_VALIDATION_FILE: store.load_inventory_validation,
    contracts.ALERTS_FILE: store.load_alerts,
}


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=16)
def _json(name: str, version: str) -> Any:
    del version
    return _JSON_LOADERS[name]()


def _report(name: str) -> dict[str, Any] | None:
    version = _version(name)
    out = None if version is None else _json(name, version)
    return out if isinstance(out, dict) and out else None


def drift_report() -> dict[str, Any] | None:
    return _report(contracts.DRIFT_REPORT_FILE)


def validation_report() -> dict[str, Any] | None:
    return _report(contracts.VALIDATION_REPORT_FILE)


def inventory_validation() -> dict[str, Any] | None:
    """Simulated vs target service levels of the policy (``inventory_validation.json``)."""
    return _report(contracts.INVENTORY_VALIDATION_FILE)


def alerts() -> list[dict[str, Any]]:
    version = _version(contracts.ALERTS_FILE)
    return [] if version is None else list(_json(contracts.ALERTS_FILE, version))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _feature_catalog(key: tuple[str | None, ...]) -> dict[str, Any] | None:
    del key
    return store.load_feature_catalog()


def feature_catalog() -> dict[str, Any] | None:
    """The feature catalog (exports/, else assets/feature_catalog.json) or None."""
    paths = (export_path(contracts.FEATURE_CATALOG_FILE),
             store.assets_dir() / contracts.FEATURE_CATALOG_FILE)  # fmt: skip
    key = tuple(store.file_version(p) for p in paths)
    return None if key == (None, None) else _feature_catalog(key)


# ----------------------------------------------------------------------------- forecasts
def _forecasts_version() -> str | None:
    return _version(contracts.FORECASTS_FILE)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=4)
def _forecasts(version: str) -> pl.DataFrame | None:
    del version
    path = export_path(contracts.FORECASTS_FILE)
    try:
        names = pl.scan_parquet(path).collect_schema().names()
        df = pl.read_parquet(path, columns=[c for c in FORECAST_CORE if c in names])
    except FileNotFoundError:  # replaced between the version check and the read
        return None
    return df if df.height else None


def forecasts() -> pl.DataFrame | None:
    """Series forecasts (``forecasts.parquet``) without the quantile columns, or None.

    Read here with only the columns the pages use rather than through
    ``store.load_forecasts()``, which loads every quantile: half the time at M5 scale.
    """
    version = _forecasts_version()
    return None if version is None else _forecasts(version)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _series_forecast(version: str, series_id: str) -> pl.DataFrame:
    del version
    lf = pl.scan_parquet(export_path(contracts.FORECASTS_FILE))
    return lf.filter(pl.col("id") == series_id).sort("date").collect()


def series_forecast(series_id: str) -> pl.DataFrame | None:
    """Every column (incl. quantiles) of one series' forecast."""
    version = _forecasts_version()
    return None if version is None else _series_forecast(version, series_id)


def with_hierarchy(df: pl.DataFrame) -> pl.DataFrame:
    """Add dept/cat/state columns derived from M5 ids (ITEM = CAT_DEPTNO_NNN, store = ST_N)."""
    item = pl.col("item_id").cast(pl.String)
    dept = item.str.replace(r"_[^_]+$", "")
    derived = {
        "dept_id": dept,
        "cat_id": dept.str.replace(r"_[^_]+$", ""),
        "state_id": pl.col("store_id").cast(pl.String).str.replace(r"_[^_]+$", ""),
    }
    return df.with_columns(e.alias(c) for c, e in derived.items() if c not in df.columns)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=4)
def _series_index(version: str) -> pl.DataFrame:
    fc = _forecasts(version)
    assert fc is not None
    first = fc.filter(pl.col("date") == pl.col("date").min())  # one row per series
    idx = first.select("id", "item_id", "store_id").unique(maintain_order=True)
    return with_hierarchy(idx).with_columns(pl.all().cast(pl.String)).sort("store_id", "item_id")


def series_index() -> pl.DataFrame | None:
    """One row per forecast series with its hierarchy (id, item, dept, cat, store, state)."""
    version = _forecasts_version()
    if version is None or _forecasts(version) is None:
        return None
    return _series_index(version)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _horizon(version: str) -> tuple[dt.date, dt.date] | None:
    del version
    lf = pl.scan_parquet(export_path(contracts.FORECASTS_FILE))
    first, last = lf.select(pl.col("date").min(), pl.col("date").max().alias("x")).collect().row(0)
    return None if first is None else (first, last)


def horizon() -> tuple[dt.date, dt.date] | None:
    """First and last forecast day (reads only the date column)."""
    version = _forecasts_version()
    return None if version is None else _horizon(version)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _summed_forecast(level: str, level_id: str | None, version: str) -> pl.DataFrame | None:
    fc, idx = _forecasts(version), _series_index(version)
    if fc is None:
        return None
    col = level_column(level)
    ids = idx if col is None else idx.filter(pl.col(col) == level_id)
    sub = fc.filter(pl.col("id").is_in(ids["id"].implode()))
    # Point forecasts add up; summing per-series quantiles gives a conservative (wide) band.
    return sub.group_by("date").agg(pl.col("predicted_sales", "lower", "upper").sum()).sort("date")


def level_forecast(level: str, level_id: str | None) -> pl.DataFrame | None:
    """date, predicted_sales, lower, upper of one aggregate (from ``forecasts_aggregated``, else
    summed from the series) or, for ``SERIES_LEVEL``, of the series ``level_id``."""
    version = _forecasts_version()
    fc = None if version is None else _forecasts(version)
    if version is None or fc is None:
        return None
    cols = ["date", "predicted_sales", "lower", "upper"]
    if level == SERIES_LEVEL:
        return fc.filter(pl.col("id") == level_id).select(cols).sort("date")
    agg = forecasts_aggregated()
    if agg is not None:
        out = agg.filter(pl.col("level") == LEVELS[level])
        if level_column(level) is not None:
            out = out.filter(pl.col("level_id").cast(pl.String) == level_id)
        if out.height:
            return out.select(cols).sort("date")
    return _summed_forecast(level, level_id, version)
