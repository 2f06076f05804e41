"""Events and SNAP days for the charts: from the ``raw_calendar`` asset, else from sales_long."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard import history
from dashboard.paths import TTL, calendar_path
from forecasting_assets import store


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _calendar(path: str, version: str) -> pl.DataFrame:
    del version
    return pl.read_parquet(path)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=2)
def _calendar_from_sales(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    lf = pl.scan_parquet(path).filter(pl.col("date") >= start)
    per_state = (
        lf.group_by("date", pl.col("state_id").cast(pl.String))
        .agg(pl.col("snap").max(), pl.col("event_name_1", "event_name_2").drop_nulls().first())
        .collect()
    )
    events = per_state.group_by("date").agg(pl.col("event_name_1", "event_name_2").first())
    snap = per_state.pivot("state_id", index="date", values="snap")
    snap = snap.rename({c: f"snap_{c}" for c in snap.columns if c != "date"})
    return events.join(snap, on="date", how="left")


def _calendar_frame() -> pl.DataFrame | None:
    path = calendar_path()
    version = store.file_version(path)
    if version is not None:
        return _calendar(str(path), version)
    sl, start = history.sales_long(), history.first_day(history.WINDOW_DAYS)
    return None if sl is None or start is None else _calendar_from_sales(*sl, start)


def calendar_marks(first: dt.date, last: dt.date, state: str | None) -> pl.DataFrame:
    """date, event (name or null), snap (0/1 for ``state``) between two dates."""
    cal = _calendar_frame()
    if cal is None:
        return pl.DataFrame(schema={"date": pl.Date, "event": pl.String, "snap": pl.Int8})
    cal = cal.filter(pl.col("date").is_between(first, last))
    snap_col = f"snap_{state}" if state else None
    snap = pl.col(snap_col) if snap_col and snap_col in cal.columns else pl.lit(0, pl.Int8)
    event = pl.concat_str(
        [pl.col("event_name_1"), pl.col("event_name_2")], separator=" / ", ignore_nulls=True
    )
    return cal.select(
        "date", pl.when(event != "").then(event).alias("event"), snap.cast(pl.Int8).alias("snap")
    )
