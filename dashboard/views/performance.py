"""Performance: backtest accuracy vs baselines, interval calibration, importance, drift, MLflow runs."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboard import drift, exports, tracking, ui
from forecasting_assets import contracts

st.title("Model performance")

LEVEL_ORDER = [
    "total",
    "state",
    "store",
    "cat",
    "dept",
    "state_cat",
    "state_dept",
    "store_cat",
    "store_dept",
    "item",
    "item_state",
    "item_store",
    "all",
]

metrics = exports.backtest_metrics()


@st.fragment
def backtest(metrics: pl.DataFrame) -> None:
    """WRMSSE by level for the chosen fold (reruns alone when the fold changes)."""
    folds = sorted(metrics["fold"].unique().to_list())
    models = sorted(metrics["model"].unique().to_list(), key=lambda m: (m != ui.MODEL, m))
    c = st.columns([1, 3])
    fold_opts = ["Mean over folds", *[f"Fold {f}" for f in folds]]
    choice = c[0].selectbox(
        "Fold",
        fold_opts,
        index=len(fold_opts) - 1,
        key="perf_fold",
        help=f"{len(folds)} walk-forward folds of 28 days; the last is the most recent",
    )
    sel = (
        metrics
        if choice == fold_opts[0]
        else metrics.filter(pl.col("fold") == int(choice.split()[-1]))
    )
    by_level = sel.group_by("model", "level").agg(pl.col("wrmsse").mean())
    levels = [lv for lv in LEVEL_ORDER if lv in by_level["level"].to_list()]
    levels += sorted(set(by_level["level"].to_list()) - set(levels))
    bars = (
        alt.Chart(by_level.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("level:N", sort=levels, title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("model:N", sort=models),
            y=alt.Y("wrmsse:Q", title="RMSSE (weighted); 'all' = WRMSSE"),
            color=alt.Color(
                "model:N",
                scale=ui.model_scale(models),
                sort=models,
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["model", "level", alt.Tooltip("wrmsse:Q", format=".3f")],
        )
    )
    ui.chart(bars.properties(height=340))
    left, right = st.columns([3, 2], gap="large")
    with left:
        wide = by_level.pivot("model", index="level", values="wrmsse")
        wide = wide.select("level", *[m for m in models if m in wide.columns])
        order = {lv: i for i, lv in enumerate(levels)}
        wide = wide.sort(pl.col("level").replace_strict(order, default=len(order)))
        if ui.MODEL in wide.columns and "seasonal_naive" in wide.columns:
            wide = wide.with_columns(
                (pl.col(ui.MODEL) / pl.col("seasonal_naive")).alias("ratio_vs_snaive")
            )
        st.dataframe(
            wide,
            hide_index=True,
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(format="%.3f") for c in wide.columns[1:]
            },
        )
    with right:
        allw = metrics.filter(pl.col("level") == "all")
        line = (
            alt.Chart(allw.to_pandas())
            .mark_line(point=True)
            .encode(
                x=alt.X("fold:O", title="fold (last = most recent)", axis=alt.Axis(labelAngle=0)),
                y=alt.Y("wrmsse:Q", title="WRMSSE", scale=alt.Scale(zero=False)),
                color=alt.Color("model:N", scale=ui.model_scale(models), legend=None),
                tooltip=["model", "fold", alt.Tooltip("wrmsse:Q", format=".3f")],
            )
        )
        ui.chart(line.properties(height=260, title="WRMSSE per fold"))
    bottom = metrics.filter(pl.col("mae").is_not_null()) if "mae" in metrics.columns else None
    if bottom is not None and bottom.height:
        with st.expander("Bottom-level MAE / RMSE / bias", icon=":material/table:"):
            st.dataframe(
                bottom.group_by("model").agg(pl.col("mae", "rmse", "bias").mean()).sort("mae"),
                hide_index=True,
                width="stretch",
            )


st.subheader("Backtest WRMSSE by level")
if metrics is None:
    ui.empty_state(
        "Backtest metrics (exports/backtest_metrics.parquet)", "the `demand_model` asset"
    )
else:
    backtest(metrics)


@st.fragment
def importance(imp: pl.DataFrame) -> None:
    """Top features by gain or split count."""
    kind = st.radio("Measure", ["gain", "split"], horizontal=True, key="perf_imp")
    top = imp.sort(kind, descending=True).head(20)
    bar = (
        alt.Chart(top.to_pandas())
        .mark_bar(color=ui.PALETTE["history"])
        .encode(
            x=alt.X(f"{kind}:Q", title=f"total {kind}"),
            y=alt.Y(
                "feature:N",
                sort="-x",
                title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=220),
            ),
            tooltip=["feature", alt.Tooltip("gain:Q", format=",.0f"), "split"],
        )
    )
    ui.chart(bar.properties(height=max(220, 24 * top.height)))


left, right = st.columns(2, gap="large")
with left:
    st.subheader("Interval coverage")
    cov = exports.interval_coverage()
    if cov is None:
        ui.empty_state(
            "Interval coverage (exports/interval_coverage.parquet)", "the `demand_model` asset"
        )
    else:
        cov = cov.filter(pl.col("quantile").is_not_null(), pl.col("coverage").is_not_null())
        intervals = cov.filter(pl.col("kind") == "interval") if "kind" in cov.columns else None
        if "kind" in cov.columns:
            cov = cov.filter(pl.col("kind") == "quantile")
        cmodels = sorted(cov["model"].unique().to_list(), key=lambda m: (m != ui.MODEL, m))
        cm = (
            st.selectbox("Model", cmodels, key="perf_cov_model") if len(cmodels) > 1 else cmodels[0]
        )
        pts = (
            cov.filter(pl.col("model") == cm)
            .group_by("quantile")
            .agg(
                pl.col("coverage").mean(),
                pl.col("coverage").min().alias("min"),
                pl.col("coverage").max().alias("max"),
            )
        )
        diag = (
            alt.Chart(pl.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}).to_pandas())
            .mark_line(strokeDash=[4, 3], color="gray")
            .encode(x="x:Q", y="y:Q")
        )
        base = alt.Chart(pts.to_pandas())
        rng = base.mark_rule(color=ui.PALETTE["band"]).encode(x="quantile:Q", y="min:Q", y2="max:Q")
        dots = base.mark_circle(size=70, color=ui.PALETTE["forecast"]).encode(
            x=alt.X("quantile:Q", title="nominal quantile level", axis=alt.Axis(format="%")),
            y=alt.Y("coverage:Q", title="share of actuals ≤ quantile", axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("quantile:Q", format=".3f"),
                alt.Tooltip("coverage:Q", format=".3f"),
            ],
        )
        ui.chart((diag + rng + dots).properties(height=300))
        st.caption("On the dashed diagonal the quantiles are calibrated; bars span the folds.")
        if intervals is not None and intervals.height:
            iv = (
                intervals.filter(pl.col("model") == cm)
                .group_by("quantile")
                .agg(pl.col("coverage").mean().alias("actual"))
                .sort("quantile")
                .rename({"quantile": "nominal"})
            )
            st.dataframe(
                iv.transpose(
                    include_header=True,
                    header_name="interval",
                    column_names=[f"{x:.0%}" for x in iv["nominal"]],
                ).slice(1),
                hide_index=True,
                width="stretch",
                column_config={
                    f"{x:.0%}": st.column_config.NumberColumn(format="%.3f") for x in iv["nominal"]
                },
            )
            st.caption(
                "Central intervals: share of actuals inside, by nominal coverage (mean over folds)."
            )
with right:
    st.subheader("Feature importance")
    imp = exports.feature_importance()
    if imp is None:
        ui.empty_state(
            "Feature importance (exports/feature_importance.parquet)", "the `demand_model` asset"
        )
    else:
        importance(imp)

st.subheader("Drift")
report = exports.drift_report()
if report is None:
    ui.empty_state("The drift report (exports/drift_report.json)", "the `drift_report` asset")
else:
    status = drift.drift_status(report)
    msg = f"Status: `{report.get('status', 'unknown')}`"
    if report.get("generated_at"):
        msg += f" — generated at {report['generated_at']}"
    {"drift": st.error, "warn": st.warning, "ok": st.success}.get(status, st.info)(msg)
    parts = {
        "Feature drift": report.get("feature_drift"),
        "Prediction drift": report.get("prediction_drift"),
        "Realized accuracy": report.get("realized_accuracy"),
    }
    shown = {k: v for k, v in parts.items() if isinstance(v, dict)}
    if shown:
        cols = st.columns(len(shown))
        for col, (label, part) in zip(cols, shown.items(), strict=True):
            extra = None
            if label == "Feature drift" and "alert_features" in part:
                extra = (
                    f"{part.get('alert_features', 0)} alert, {part.get('warn_features', 0)} warn"
                )
            col.metric(
                label,
                str(part.get("status", "–")),
                extra,
                delta_color="off",
                delta_arrow="off",
                border=True,
            )
    psi = drift.drift_features(report)
    if psi is not None:
        warn, alert = drift.drift_thresholds(report)
        psi = (
            psi.filter(pl.col("psi").is_not_null())
            .sort("psi", descending=True)
            .with_columns(
                pl.when(pl.col("psi") >= alert)
                .then(pl.lit("alert"))
                .when(pl.col("psi") >= warn)
                .then(pl.lit("warn"))
                .otherwise(pl.lit("ok"))
                .alias("state")
            )
        )
        bars = (
            alt.Chart(psi.head(30).select("feature", "psi", "state").to_pandas())
            .mark_bar()
            .encode(
                x=alt.X("psi:Q", title="PSI (reference vs recent window)"),
                y=alt.Y(
                    "feature:N",
                    sort="-x",
                    title=None,
                    axis=alt.Axis(labelOverlap=False, labelLimit=220),
                ),
                color=alt.Color(
                    "state:N",
                    scale=alt.Scale(
                        domain=["ok", "warn", "alert"], range=["#59a14f", "#edc948", "#e15759"]
                    ),
                    legend=alt.Legend(orient="top", title=None),
                ),
                tooltip=["feature", alt.Tooltip("psi:Q", format=".3f"), "state"],
            )
        )
        rules = (
            alt.Chart(pl.DataFrame({"psi": [warn, alert]}).to_pandas())
            .mark_rule(strokeDash=[4, 3], color="gray")
            .encode(x="psi:Q")
        )
        ui.chart((bars + rules).properties(height=max(220, 24 * min(psi.height, 30))))
        st.caption(
            f"Top {min(psi.height, 30)} of {psi.height} features; dashed rules: warn {warn:g}, "
            f"alert {alert:g}."
        )
    extra = {k: v for k, v in report.items() if k not in ("features", "feature_drift_table")}
    with st.expander("Full report", icon=":material/description:"):
        st.json(extra, expanded=False)

st.subheader("Training runs and champion changes")
info = tracking.mlflow_info()
runs, versions = info.get("runs") or [], info.get("versions") or []
if not runs and not versions:
    ui.empty_state(f"The MLflow store ({tracking.tracking_uri()})", "the `demand_model` asset")
else:
    if runs:
        champ_v = (info.get("champion") or {}).get("version")
        frame = pl.DataFrame(
            [
                {
                    "start_time": r.get("start_time"),
                    "run_name": r.get("run_name"),
                    "status": r.get("status"),
                    "wrmsse": (r.get("metrics") or {}).get("wrmsse"),
                    "wrmsse_seasonal_naive": (r.get("metrics") or {}).get("wrmsse_seasonal_naive"),
                    "model_version": r.get("model_version"),
                    "champion": r.get("model_version") is not None
                    and r.get("model_version") == champ_v,
                    "run_id": r.get("run_id"),
                }
                for r in runs
            ],
            infer_schema_length=None,
        )
        plot = frame.filter(pl.col("wrmsse").is_not_null())
        if plot.height:
            pts = plot.unpivot(
                index=["start_time", "run_name"],
                on=["wrmsse", "wrmsse_seasonal_naive"],
                variable_name="metric",
                value_name="value",
            ).drop_nulls("value")
            line = (
                alt.Chart(pts.to_pandas())
                .mark_line(point=True)
                .encode(
                    x=alt.X(
                        "start_time:T",
                        title="run start",
                        axis=alt.Axis(format="%b %d %H:%M", labelAngle=0),
                    ),
                    y=alt.Y("value:Q", title="backtest WRMSSE", scale=alt.Scale(zero=False)),
                    color=alt.Color(
                        "metric:N",
                        scale=alt.Scale(
                            domain=["wrmsse", "wrmsse_seasonal_naive"],
                            range=[ui.PALETTE["forecast"], ui.PALETTE["history"]],
                        ),
                        legend=alt.Legend(orient="top", title=None),
                    ),
                    tooltip=[
                        "run_name",
                        alt.Tooltip("start_time:T", format="%Y-%m-%d %H:%M"),
                        "metric",
                        alt.Tooltip("value:Q", format=".3f"),
                    ],
                )
            )
            ui.chart(line.properties(height=240))
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * frame.height, 320),
            column_config={"champion": st.column_config.CheckboxColumn("champion")},
        )
    if versions:
        st.caption(
            f"Registered versions of `{contracts.MODEL_NAME}` (the `{contracts.CHAMPION_ALIAS}` "
            "alias marks the serving one):"
        )
        st.dataframe(
            pl.DataFrame(
                [
                    {
                        "version": v["version"],
                        "registered": v.get("registered_at"),
                        "aliases": ", ".join(v.get("aliases") or []),
                        "wrmsse": (v.get("metrics") or {}).get("wrmsse"),
                        "run_id": v.get("run_id"),
                    }
                    for v in versions
                ],
                infer_schema_length=None,
            ),
            hide_index=True,
            width="stretch",
        )
