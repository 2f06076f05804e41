"""Forecasting: history joined to the forecast and its interval, for any level of the hierarchy."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard import events, exports, history, ui

st.title("Forecasting")

fc = exports.forecasts()
idx = exports.series_index()
hz = exports.horizon()
if fc is None or idx is None or hz is None:
    ui.empty_state("The forecast export (exports/forecasts.parquet)", "the `batch_forecasts` asset")
    st.stop()

LEVEL_OPTIONS = [*exports.LEVELS, exports.SERIES_LEVEL]
top = st.columns([1.2, 1.2, 1.2, 2.4])
level = top[0].selectbox("Level", LEVEL_OPTIONS, index=2, key="fc_level")
level_id: str | None = None
store_id: str | None = None
item: str | None = None
state: str | None = None
if level == exports.SERIES_LEVEL:
    store_id = top[1].selectbox("Store", idx["store_id"].unique().sort().to_list(), key="fc_store")
    depts = ["All departments", *idx["dept_id"].unique().sort().to_list()]
    dept = top[2].selectbox("Department", depts, key="fc_dept")
    items = idx.filter(pl.col("store_id") == store_id)
    if dept != "All departments":
        items = items.filter(pl.col("dept_id") == dept)
    item = top[3].selectbox("Item", items["item_id"].sort().to_list(), key="fc_item")
    level_id = f"{item}_{store_id}"
    state = str(store_id).split("_")[0]
elif level != "Total":
    col = exports.level_column(level)
    assert col is not None
    level_id = top[1].selectbox(level, idx[col].unique().sort().to_list(), key="fc_value")
    if level == "State":
        state = level_id
    elif level == "Store":
        state = str(level_id).split("_")[0]

opts = st.columns([2, 1, 1, 2.4])
days = opts[0].select_slider(
    "History shown (days)", [28, 56, 90, 180, 270, 364], value=180, key="fc_days"
)
show_events = opts[1].toggle("Events", value=True, key="fc_events")
show_snap = opts[2].toggle(
    "SNAP days",
    value=state is not None,
    disabled=state is None,
    key="fc_snap",
    help="SNAP days are state-specific: shown for a state, store or item",
)

if level == exports.SERIES_LEVEL:
    series_fc = exports.series_forecast(str(level_id))
    level_fc = series_fc.select("date", "predicted_sales", "lower", "upper")
else:
    series_fc = None
    level_fc = exports.level_forecast(level, level_id)
hist = history.level_history(level, level_id, days, store_id=store_id, item_id=item)
first = hz[0] - dt.timedelta(days=days)
marks = events.calendar_marks(first, hz[1], state)

label = "all series" if level == "Total" else f"{level.lower()} {level_id}"
k = st.columns(4)
next_units = float(level_fc["predicted_sales"].sum()) if level_fc is not None else None
last_units = None
if hist is not None and hist.height:
    last_units = float(hist.filter(pl.col("date") >= hz[0] - dt.timedelta(days=28))["sales"].sum())
k[0].metric(
    "Forecast, next 28 d",
    ui.fmt_num(next_units),
    ui.pct_change(next_units, last_units),
    border=True,
)
k[1].metric("Actual, last 28 d", ui.fmt_num(last_units), border=True)
k[2].metric("Mean forecast / day", ui.fmt_num(next_units / 28 if next_units else None), border=True)
if level_fc is not None and level_fc.height:
    width = float((level_fc["upper"] - level_fc["lower"]).mean())
    k[3].metric("Mean 80 % interval width", ui.fmt_num(width), border=True)

st.subheader(f"History and forecast: {label}")
if hist is None:
    st.caption(
        "No sales history materialized (assets/sales_long.parquet): showing the forecast only."
    )
ui.chart(
    ui.forecast_chart(hist, level_fc, marks, show_events, show_snap, height=380), key="fc_chart"
)
st.caption(
    "Shaded band: 80 % prediction interval. Dashed rules: calendar events. "
    "Green shading: SNAP days of the selected state."
)

st.subheader("Forecast table")
table = series_fc if series_fc is not None else level_fc
if table is None or not table.height:
    st.info("No forecast rows for this selection.")
else:
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=300,
        column_config={
            "date": st.column_config.DateColumn("date", format="YYYY-MM-DD"),
            **{
                c: st.column_config.NumberColumn(format="%.2f")
                for c in table.columns
                if table[c].dtype.is_float()
            },
        },
    )
    name = "total" if level_id is None else str(level_id)
    st.download_button(
        "Download CSV",
        table.write_csv(),
        file_name=f"forecast_{name}.csv",
        mime="text/csv",
        icon=":material/download:",
    )
