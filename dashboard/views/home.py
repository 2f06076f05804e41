"""Home: the state of the system at a glance."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from dashboard import drift, events, exports, history, tracking, ui
from forecasting_assets import contracts
from forecasting_assets.modeling.backtest import headline_table

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

heads = headline_table(metrics) if metrics is not None else None
mine = heads.filter(pl.col("model") == ui.MODEL) if heads is not None else None
if mine is not None and mine.height:
    row = mine.row(0, named=True)
    held = heads.filter(pl.col("model") == contracts.OUT_OF_FOLD_KEY)  # type: ignore[union-attr]
    held_note = f" · out of fold {held['mean_ratio'][0]:.3f}" if held.height else ""
    c[1].metric(
        "Backtest WRMSSE ÷ seasonal naive",
        f"{row['mean_ratio']:.3f}",
        f"{row['min_ratio']:.3f}–{row['max_ratio']:.3f} over {row['folds']} folds{held_note}",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="mean over the backtest folds of the model's WRMSSE (12 M5 levels) over seasonal "
        "naive's on the same fold, with its min and max; lower is better. Out of fold: the "
        "same, each fold scored with the trees and weights chosen on the other folds only",
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
        table = headline_table(metrics)
        models = table["model"].to_list()
        base = alt.Chart(table.to_pandas()).encode(
            y=alt.Y("model:N", sort=models, title=None),
            tooltip=[
                "model",
                alt.Tooltip("mean_ratio:Q", format=".3f", title="mean ratio"),
                alt.Tooltip("min_ratio:Q", format=".3f", title="best fold"),
                alt.Tooltip("max_ratio:Q", format=".3f", title="worst fold"),
                "folds",
            ],
        )
        bars = base.mark_bar().encode(
            x=alt.X(
                "mean_ratio:Q", title="WRMSSE ÷ seasonal naive, mean over folds (lower is better)"
            ),
            color=alt.Color("model:N", scale=ui.model_scale(models), legend=None),
        )
        spread = base.mark_rule(color="black").encode(x="min_ratio:Q", x2="max_ratio:Q")
        text = bars.mark_text(align="left", dx=3).encode(
            text=alt.Text("mean_ratio:Q", format=".3f")
        )
        ui.chart((bars + spread + text).properties(height=230))

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
