"""What the Data page shows about sales_long: its size and span, per-item intermittency of a store
and an item's weekly prices.

Intermittency statistics and demand classes are ``forecasting_assets.inventory.demand``'s (the
classes of the inventory plan), on a store's items × days history matrix.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import streamlit as st

from dashboard import history, row_groups
from dashboard.paths import TTL
from forecasting_assets.inventory.demand import (
    ADI_CUTOFF,
    CV2_CUTOFF,
    classify_demand,
    demand_statistics,
)

DEMAND_CUTOFFS = (ADI_CUTOFF, CV2_CUTOFF)
"""The Syntetos–Boylan (ADI, CV²) cut-offs."""
HIERARCHY = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
STATS_SCHEMA = {
    "item_id": pl.String,
    "days": pl.Int64,
    "units": pl.Float64,
    "zero_share": pl.Float64,
    "adi": pl.Float64,
    "cv2": pl.Float64,
    "demand_class": pl.String,
}


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=10)
def _series_stats(store_id: str, key: tuple[str, str, dt.date]) -> pl.DataFrame:
    del key
    found = history.store_history(store_id)
    assert found is not None
    items, matrix = found
    if not items.len():
        return pl.DataFrame(schema=STATS_SCHEMA)
    stats = demand_statistics(matrix[:, -history.WINDOW_DAYS :])
    seen = stats["n_days"] > 0
    return pl.DataFrame(
        {
            "item_id": items.filter(seen),
            "days": stats["n_days"][seen],
            "units": (stats["mean_daily_demand"] * stats["n_days"])[seen],
            "zero_share": (1 - stats["n_nonzero"] / stats["n_days"])[seen],
            "adi": stats["adi"][seen],
            "cv2": stats["cv2"][seen],
            "demand_class": classify_demand(stats["adi"], stats["cv2"])[seen].astype(str),
        },
        schema=STATS_SCHEMA,
    )


def series_stats(store_id: str) -> pl.DataFrame | None:
    """Per item of a store, over the last WINDOW_DAYS days from its launch: days, units, zero
    share, ADI, CV² and demand class."""
    sl, start = history.sales_long(), history.first_day(history.STORE_DAYS)
    if sl is None or start is None:
        return None
    return _series_stats(store_id, (*sl, start))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _data_summary(path: str, version: str) -> dict[str, Any]:
    schema = row_groups.schema(path, version)
    levels = {
        c: len(cats) if (cats := row_groups.categories(path, version, c)) is not None else None
        for c in HIERARCHY
        if c in schema
    }
    rows = int(row_groups.row_groups(path, version)["rows"].sum())  # from the Parquet footers
    first = pl.scan_parquet(path).select("date").head(1).collect().item()  # series start on day 1
    return {"rows": rows, "first": first, "columns": len(schema), "levels": levels}


def data_summary() -> dict[str, Any] | None:
    """Rows, first/last day and hierarchy sizes of sales_long (metadata and one row: no scan)."""
    sl = history.sales_long()
    return None if sl is None else {**_data_summary(*sl), "last": history.last_sales_day()}


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=32)
def _price_history(path: str, version: str, item_id: str) -> pl.DataFrame:
    rows = row_groups.read_scattered(
        path, version, ["store_id", "wm_yr_wk", "date", "sell_price"], item_id=item_id
    )
    return (
        rows.lazy()
        .group_by(pl.col("store_id").cast(pl.String), "wm_yr_wk")
        .agg(pl.col("date").min().alias("week_start"), pl.col("sell_price").drop_nulls().first())
        .drop_nulls("sell_price")
        .select("week_start", "store_id", "sell_price")
        .sort("store_id", "week_start")
        .collect()
    )


def price_history(item_id: str) -> pl.DataFrame | None:
    """Weekly sell price of one item in every store (only the row groups that can hold the item)."""
    sl = history.sales_long()
    return None if sl is None else _price_history(*sl, item_id)


def enum_values(column: str) -> list[str]:
    """Values of an Enum column of sales_long from its schema (no scan); [] if unavailable."""
    sl = history.sales_long()
    cats = None if sl is None else row_groups.categories(*sl, column)
    return sorted(cats) if cats else []
