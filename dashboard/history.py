"""Cached reads of the sales history (``<FORECASTING_HOME>/assets/sales_long.parquet``).

Scanned lazily, never whole: aggregates over the last ``WINDOW_DAYS`` days come from one store ×
department × day cube (every aggregate level of the Forecasting page), Home's totals from an even
narrower daily total, and one store or series is read through only the row groups that can hold
it (:mod:`dashboard.row_groups`). The ``id`` column (the costliest Enum to decode) is never read.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import streamlit as st

from dashboard import exports, row_groups
from dashboard.paths import TTL, sales_long_path
from forecasting_assets import store

WINDOW_DAYS = 364
"""History days the pages show and aggregate."""
STORE_DAYS = WINDOW_DAYS + 28 + 56
"""History days of a store's matrix: the window, plus the dispersion fit's level window and
protection periods up to 56 days (lead time <= 28 + review <= 28) for the what-if."""
HOME_DAYS = 90


def sales_long() -> tuple[str, str] | None:
    """(path or glob, version) of sales_long: one file, or a folder of partitions (by store)."""
    path = sales_long_path()
    version = store.file_version(path)
    if version is not None:
        return str(path), version
    parts = sorted(path.with_suffix("").glob("*.parquet"))
    if not parts:
        return None
    return str(path.with_suffix("") / "*.parquet"), "|".join(
        store.file_version(p) or "" for p in parts
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _last_sales_day(path: str, version: str) -> dt.date | None:
    del version
    lf = pl.scan_parquet(path).filter(pl.col("sales").is_not_null())
    return lf.select(pl.col("date").max()).collect().item()


def last_sales_day() -> dt.date | None:
    """Last day with actual sales: the day before the forecast horizon (or from sales_long)."""
    hz = exports.horizon()
    if hz is not None:
        return hz[0] - dt.timedelta(days=1)
    sl = sales_long()
    return None if sl is None else _last_sales_day(*sl)


def first_day(days: int) -> dt.date | None:
    """First day of the last ``days`` history days."""
    last = last_sales_day()
    return None if last is None else last - dt.timedelta(days=days - 1)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=2)
def _cube(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    cube = (
        pl.scan_parquet(path)
        .filter(pl.col("date") >= start, pl.col("sales").is_not_null())
        .group_by("store_id", "dept_id", "date")
        .agg(
            pl.col("sales").sum().alias("sales"),
            (pl.col("sales") * pl.col("sell_price")).sum().alias("dollars"),
            pl.len().alias("series_days"),
            (pl.col("sales") == 0).sum().alias("zero_days"),
            pl.col("sell_price").is_null().sum().alias("price_missing"),
        )
        .collect()
    )
    # state and category follow from the M5 ids (CA_1 -> CA, FOODS_3 -> FOODS): not read from disk
    return cube.with_columns(pl.col("store_id", "dept_id").cast(pl.String)).with_columns(
        pl.col("store_id").str.replace(r"_[^_]+$", "").alias("state_id"),
        pl.col("dept_id").str.replace(r"_[^_]+$", "").alias("cat_id"),
    )


def history_cube() -> pl.DataFrame | None:
    """Daily units and dollars by store × department over the last WINDOW_DAYS history days."""
    sl, start = sales_long(), first_day(WINDOW_DAYS)
    return None if sl is None or start is None else _cube(*sl, start)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=6)
def _store_history(
    path: str, version: str, start: dt.date, days: int, store_id: str
) -> tuple[pl.Series, np.ndarray]:
    obs = (
        row_groups.scan(path, version, store_id=store_id)
        .filter(pl.col("date") >= start, pl.col("sales").is_not_null(), pl.col("is_launched"))
        .select("item_id", "date", "sales")
        .collect()
    )
    # Indexed by the item's Enum code: no string is built for the ~1M rows of a store.
    item = obs["item_id"]
    if not isinstance(item.dtype, pl.Enum):
        item = item.cast(pl.String).cast(pl.Enum(item.cast(pl.String).unique().sort()))
    names = item.dtype.categories  # type: ignore[attr-defined]
    code = item.to_physical().to_numpy().astype(np.int64)
    matrix = np.full((len(names), days), np.nan)
    matrix[code, (obs["date"] - start).dt.total_days().to_numpy()] = obs["sales"].to_numpy()
    present = np.flatnonzero(np.bincount(code, minlength=len(names)))
    return names.gather(present), matrix[present]


def store_history(store_id: str) -> tuple[pl.Series, np.ndarray] | None:
    """(item_id, matrix) of one store: its items (String) and their sales over the last
    ``STORE_DAYS`` history days, ``(items, STORE_DAYS)``, NaN before launch or outside the data
    (the history matrix of ``forecasting_assets.inventory.demand``)."""
    sl, start = sales_long(), first_day(STORE_DAYS)
    return None if sl is None or start is None else _store_history(*sl, start, STORE_DAYS, store_id)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _series_history(
    path: str, version: str, start: dt.date, store_id: str, item_id: str
) -> pl.DataFrame:
    return (
        row_groups.scan(path, version, store_id=store_id, item_id=item_id)
        .filter(pl.col("date") >= start)
        .select("date", "sales")
        .sort("date")
        .collect()
    )


def level_history(
    level: str,
    level_id: str | None,
    days: int,
    store_id: str | None = None,
    item_id: str | None = None,
) -> pl.DataFrame | None:
    """date, sales for the last ``days`` history days of one aggregate or (``SERIES_LEVEL``) of
    the series ``item_id`` in ``store_id``."""
    last, start, sl = last_sales_day(), first_day(WINDOW_DAYS), sales_long()
    if last is None or start is None or sl is None:
        return None
    first = last - dt.timedelta(days=days - 1)
    if level == exports.SERIES_LEVEL:
        hist = _series_history(*sl, start, store_id or "", item_id or "")
        return hist.filter(pl.col("date").is_between(first, last))
    cube = history_cube()
    if cube is None:
        return None
    col = exports.level_column(level)
    if col is not None:
        cube = cube.filter(pl.col(col) == level_id)
    return (
        cube.filter(pl.col("date") >= first)
        .group_by("date")
        .agg(pl.col("sales").sum())
        .sort("date")
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _daily_totals(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    return (
        pl.scan_parquet(path)
        .filter(pl.col("date") >= start, pl.col("sales").is_not_null())
        .group_by("date")
        .agg(
            pl.col("sales").sum().alias("sales"),
            (pl.col("sales") * pl.col("sell_price")).sum().alias("dollars"),
        )
        .sort("date")
        .collect()
    )


def daily_totals() -> pl.DataFrame | None:
    """date, sales, dollars summed over all series for the last HOME_DAYS days (no Enum column
    is read, so this is several times cheaper than the store × department cube)."""
    sl, start = sales_long(), first_day(HOME_DAYS)
    return None if sl is None or start is None else _daily_totals(*sl, start)


def forecast_totals() -> dict[str, float | None] | None:
    """Units/dollars forecast for the horizon and actual units/dollars of the 28 days before it.

    Forecast dollars: units valued at the average realized price per unit of the last 28 days.
    """
    fc = exports.forecasts()
    if fc is None:
        return None
    out: dict[str, float | None] = {
        "units_next": float(fc["predicted_sales"].sum()),
        "dollars_next": None,
        "units_last": None,
        "dollars_last": None,
    }
    daily, last = daily_totals(), last_sales_day()
    if daily is None or last is None:
        return out
    last28 = daily.filter(pl.col("date") > last - dt.timedelta(days=28))
    out["units_last"] = float(last28["sales"].sum())
    out["dollars_last"] = float(last28["dollars"].sum())
    if out["units_last"]:
        out["dollars_next"] = out["units_next"] * out["dollars_last"] / out["units_last"]
    return out
