"""Data: what the pipeline ingested, its validation results and the shape of demand."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboard import data_profile, exports, history, ui

st.title("Data")

summary = data_profile.data_summary()
if summary is None:
    ui.empty_state("The sales table (assets/sales_long.parquet)", "the `sales_long` asset")
else:
    lv = summary["levels"]
    k = st.columns(5)
    k[0].metric(
        "Rows in sales_long",
        ui.fmt_num(summary["rows"]),
        border=True,
        help="series × day, incl. the 28 horizon days",
    )
    k[1].metric(
        "Series",
        f"{lv['id']:,}" if lv.get("id") else "–",
        border=True,
        help=f"{lv.get('dept_id')} departments in {lv.get('cat_id')} categories",
    )
    k[2].metric("Items", f"{lv['item_id']:,}" if lv.get("item_id") else "–", border=True)
    k[3].metric(
        "Stores",
        f"{lv['store_id']}" if lv.get("store_id") else "–",
        border=True,
        help=f"in {lv.get('state_id')} states",
    )
    span = (
        (summary["last"] - summary["first"]).days + 1
        if summary["first"] and summary["last"]
        else None
    )
    k[4].metric(
        "History (days)",
        f"{span:,}" if span else "–",
        border=True,
        help=f"{summary['first']} → {summary['last']}",
    )

st.subheader("Validation of the latest run")
report = exports.validation_report()
if report is None:
    ui.empty_state("The validation report (exports/validation_report.json)", "the ingestion assets")
else:
    checks = ui.flat_records(report.get("checks") or [])
    if checks.height and "passed" not in checks.columns:
        checks = checks.with_columns(passed=pl.lit(True))
    failed = checks.filter(~pl.col("passed")) if checks.height else checks
    c = st.columns(4)
    c[0].metric("Checks", f"{checks.height}", border=True)
    c[1].metric("Passed", f"{checks.height - failed.height}", border=True)
    c[2].metric("Failed", f"{failed.height}", border=True)
    c[3].metric(
        "Validated on",
        str(report.get("generated_at", "–"))[:10],
        border=True,
        help=f"at {report.get('generated_at')}; raw data: {report.get('raw_dir')}",
    )
    if failed.height:
        for row in failed.iter_rows(named=True):
            sev = str(row.get("severity") or "").upper()
            text = (
                f"**{row.get('name')}** on `{row.get('asset')}` ({sev or 'ERROR'}, "
                f"{row.get('failing_rows') or 0} failing rows): {row.get('message')}"
            )
            (st.warning if sev.startswith("WARN") else st.error)(text)
    else:
        st.success("All validation checks passed.", icon=":material/verified:")
    if checks.height:
        st.dataframe(
            checks.sort("passed"),
            hide_index=True,
            width="stretch",
            column_config={"passed": st.column_config.CheckboxColumn("passed")},
        )
    files = report.get("files") or {}
    if files:
        with st.expander("Input files", icon=":material/folder:"):
            st.json(files, expanded=False)


@st.fragment
def intermittency() -> None:
    """Zero share and ADI/CV² per item of one store (reruns alone when the store changes)."""
    st.subheader("Intermittency")
    stores = data_profile.enum_values("store_id")
    idx = exports.series_index()
    if not stores and idx is not None:
        stores = idx["store_id"].unique().sort().to_list()
    store = st.columns(4)[0].selectbox("Store", stores, key="data_store") if stores else None
    stats = data_profile.series_stats(store) if store else None
    if stats is not None and stats.height:
        zero = float((stats["zero_share"] * stats["days"]).sum() / max(stats["days"].sum(), 1))
        st.caption(
            f"Per item in {store}, over the last {history.WINDOW_DAYS} days from its launch: "
            f"{stats.height:,} items, {zero:.1%} of their days without a sale."
        )
        left, mid, right = st.columns(3, gap="medium")
        with left:
            hist = (
                alt.Chart(stats.select("zero_share").to_pandas())
                .mark_bar(color=ui.PALETTE["history"])
                .encode(
                    x=alt.X(
                        "zero_share:Q",
                        bin=alt.Bin(maxbins=20),
                        title="share of zero-sales days",
                        axis=alt.Axis(format="%"),
                    ),
                    y=alt.Y("count():Q", title="items"),
                    tooltip=[alt.Tooltip("count():Q", title="items")],
                )
            )
            ui.chart(hist.properties(height=260, title="Zero share"))
        with mid:
            sample = (
                stats.filter(pl.col("adi").is_finite())
                .head(5000)
                .with_columns(pl.col("adi").clip(upper_bound=20))
            )
            pts = (
                alt.Chart(sample.to_pandas())
                .mark_circle(size=24, opacity=0.7)
                .encode(
                    x=alt.X("adi:Q", title="ADI (days between sales)", scale=alt.Scale(type="log")),
                    y=alt.Y("cv2:Q", title="CV² of non-zero sales"),
                    color=alt.Color(
                        "demand_class:N",
                        scale=ui.CLASS_SCALE,
                        legend=alt.Legend(orient="top", title=None),
                    ),
                    tooltip=[
                        "item_id",
                        alt.Tooltip("adi:Q", format=".2f"),
                        alt.Tooltip("cv2:Q", format=".2f"),
                        "demand_class",
                    ],
                )
            )
            adi_cut, cv2_cut = data_profile.DEMAND_CUTOFFS
            cut_x = (
                alt.Chart(pl.DataFrame({"adi": [adi_cut]}).to_pandas())
                .mark_rule(strokeDash=[4, 3])
                .encode(x="adi:Q")
            )
            cut_y = (
                alt.Chart(pl.DataFrame({"cv2": [cv2_cut]}).to_pandas())
                .mark_rule(strokeDash=[4, 3])
                .encode(y="cv2:Q")
            )
            ui.chart((pts + cut_x + cut_y).properties(height=260, title="ADI vs CV²"))
        with right:
            bar = ui.demand_class_bar(stats, "items")
            ui.chart(bar.properties(height=260, title="Demand classes"))


@st.fragment
def price_history() -> None:
    """Weekly price of one item in one store over the whole history."""
    st.subheader("Price history")
    items = data_profile.enum_values("item_id")
    idx = exports.series_index()
    if not items and idx is not None:
        items = idx["item_id"].unique().sort().to_list()
    if items:
        item = st.columns(4)[0].selectbox("Item", items, key="data_item")
        prices = data_profile.price_history(item)
        if prices is None or not prices.height:
            st.info(f"No prices recorded for {item}.")
        else:
            line = (
                alt.Chart(prices.to_pandas())
                .mark_line(interpolate="step-after")
                .encode(
                    x=alt.X("week_start:T", title=None),
                    y=alt.Y("sell_price:Q", title="sell price ($)", scale=alt.Scale(zero=False)),
                    color=alt.Color("store_id:N", legend=alt.Legend(orient="top", title=None)),
                    tooltip=[
                        "store_id",
                        alt.Tooltip("week_start:T"),
                        alt.Tooltip("sell_price:Q", format="$.2f"),
                    ],
                )
            )
            ui.chart(line.properties(height=280))


if summary is not None:
    intermittency()
    price_history()

catalog = exports.feature_catalog()
if catalog:
    with st.expander("Feature catalog", icon=":material/menu_book:"):
        feats = catalog.get("features") if isinstance(catalog, dict) else None
        if isinstance(feats, list) and feats and isinstance(feats[0], dict):
            meta = {
                k: v
                for k, v in catalog.items()
                if k in ("features_version", "generated_at", "rows")
            }
            if meta:
                st.caption(" · ".join(f"{k}: {v}" for k, v in meta.items()))
            st.dataframe(ui.flat_records(feats), hide_index=True, width="stretch")
        else:
            st.json(catalog, expanded=False)
