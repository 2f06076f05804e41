"""Home: the state of the system at a glance."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from dashboard import drift, events, exports, history, tracking, ui

st.title("M5 demand forecasting")
st.caption("28-day unit-sales forecasts for every item × store, with inventory recommendations.")

fc = exports.forecasts()
idx = exports.series_index()
hz = exports.horizon()
info = tracking.mlflow_info()
champ = info.get("champion")
metrics = exports.backtest_metrics()

if fc is None or idx is None or hz is None:
    ui.empty_state("The forecast export (exports/forecasts.parquet)", "the `batch_forecasts` asset")
else:
    c = st.columns(4)
    c[0].metric(
        "Series", f"{idx.height:,}", help="item × store series in the forecast", border=True
    )
    c[1].metric(
        "Stores",
        f"{idx['store_id'].n_unique()}",
        help=f"{idx['state_id'].n_unique()} states, {idx['item_id'].n_unique():,} items",
        border=True,
    )
    c[2].metric(
        "Horizon",
        f"{(hz[1] - hz[0]).days + 1} days",
        help=f"{hz[0]:%Y-%m-%d} → {hz[1]:%Y-%m-%d}",
        border=True,
    )
    c[3].metric("Last data day", f"{hz[0] - dt.timedelta(days=1):%Y-%m-%d}", border=True)

c = st.columns(4)
if champ:
    c[0].metric(
        "Champion model",
        f"v{champ['version']}",
        ui.age(champ.get("registered_at")),
        delta_color="off",
        delta_arrow="off",
        border=True,
        help=f"run {champ.get('run_id')}",
    )
elif fc is not None:
    c[0].metric(
        "Model version",
        str(fc["model_version"][0]),
        "no MLflow champion found",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
else:
    c[0].metric(
        "Champion model",
        "–",
        "no model registered yet",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )

model_w = naive_w = None
if metrics is not None:
    last = metrics.filter(pl.col("level") == "all", pl.col("fold") == metrics["fold"].max())
    w = dict(zip(last["model"].to_list(), last["wrmsse"].to_list(), strict=True))
    model_w, naive_w = w.get(ui.MODEL), w.get("seasonal_naive")
if model_w is not None:
    delta = f"{(model_w / naive_w - 1) * 100:+.1f}% vs seasonal naive" if naive_w else None
    c[1].metric(
        "Backtest WRMSSE",
        f"{model_w:.3f}",
        delta,
        delta_color="inverse",
        border=True,
        help="last backtest fold, 12 M5 levels; lower is better",
    )
else:
    c[1].metric(
        "Backtest WRMSSE", "–", "no backtest yet", delta_color="off", delta_arrow="off", border=True
    )

totals = history.forecast_totals()
if totals:
    c[2].metric(
        "Forecast units, next 28 d",
        ui.fmt_num(totals["units_next"]),
        ui.pct_change(totals["units_next"], totals["units_last"]),
        border=True,
        help=f"last 28 days: {ui.fmt_num(totals['units_last'])} units",
    )
    c[3].metric(
        "Forecast sales $, next 28 d",
        ui.fmt_money(totals["dollars_next"]),
        ui.pct_change(totals["dollars_next"], totals["dollars_last"]),
        border=True,
        help="forecast units × the average realized price per unit of the last 28 days; "
        f"last 28 days: {ui.fmt_money(totals['dollars_last'])}",
    )
else:
    c[2].metric("Forecast units, next 28 d", "–", border=True)
    c[3].metric("Forecast sales $, next 28 d", "–", border=True)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Total units: last 90 days and the forecast")
    daily = history.daily_totals()
    hist = daily.select("date", "sales") if daily is not None else None
    tot = exports.level_forecast("Total", None) if fc is not None else None
    if hist is None and tot is None:
        ui.empty_state("Sales history (assets/sales_long.parquet)", "the `sales_long` asset")
    else:
        first = hz[0] - dt.timedelta(days=90) if hz else dt.date.min
        last_day = hz[1] if hz else dt.date.max
        marks = events.calendar_marks(first, last_day, None) if hz else None
        ui.chart(ui.forecast_chart(hist, tot, marks, show_snap=False, height=300))

with right:
    st.subheader("Backtest: model vs baselines")
    if metrics is None:
        ui.empty_state(
            "Backtest metrics (exports/backtest_metrics.parquet)", "the `demand_model` asset"
        )
    else:
        last = metrics.filter(pl.col("level") == "all", pl.col("fold") == metrics["fold"].max())
        last = last.sort("wrmsse")
        models = last["model"].to_list()
        bars = (
            alt.Chart(last.to_pandas())
            .mark_bar()
            .encode(
                x=alt.X("wrmsse:Q", title="WRMSSE (last fold, lower is better)"),
                y=alt.Y("model:N", sort=models, title=None),
                color=alt.Color("model:N", scale=ui.model_scale(models), legend=None),
                tooltip=["model", alt.Tooltip("wrmsse:Q", format=".3f")],
            )
        )
        text = bars.mark_text(align="left", dx=3).encode(text=alt.Text("wrmsse:Q", format=".3f"))
        ui.chart((bars + text).properties(height=230))

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Drift")
    report = exports.drift_report()
    status = drift.drift_status(report)
    if report is None:
        ui.empty_state("The drift report (exports/drift_report.json)", "the `drift_report` asset")
    elif status == "drift":
        st.error(
            f"Drift detected (status: `{report.get('status')}`) — see Performance.",
            icon=":material/warning:",
        )
    elif status == "warn":
        st.warning(
            f"Drift warning (status: `{report.get('status')}`) — see Performance.",
            icon=":material/warning:",
        )
    elif status == "ok":
        st.success(f"No drift (status: `{report.get('status')}`).", icon=":material/check_circle:")
    else:
        st.warning(f"Drift status unknown: `{report.get('status')}`.", icon=":material/help:")
    if report is not None:
        parts = {
            "features": report.get("feature_drift"),
            "predictions": report.get("prediction_drift"),
            "realized accuracy": report.get("realized_accuracy"),
        }
        detail = [f"{k}: `{v.get('status')}`" for k, v in parts.items() if isinstance(v, dict)]
        if detail:
            st.markdown(" · ".join(detail))
        if report.get("generated_at"):
            st.caption(f"Report generated at {report['generated_at']}")
with right:
    st.subheader("Recent pipeline alerts")
    alerts = exports.alerts()
    if not alerts:
        st.success("No pipeline alerts recorded.", icon=":material/notifications_off:")
    else:
        frame = pl.DataFrame(alerts[-10:][::-1], infer_schema_length=None)
        st.dataframe(
            frame, hide_index=True, width="stretch", height=min(38 + 35 * frame.height, 250)
        )
