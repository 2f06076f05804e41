"""Inventory: recommendations by store and department, and a service-level / lead-time what-if."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboard import exports, ui, whatif

st.title("Inventory")

plan = exports.inventory_plan()
if plan is None:
    ui.empty_state(
        "The inventory plan (exports/inventory_plan.parquet)", "the `inventory_plan` asset"
    )
    st.stop()

if "dept_id" not in plan.columns and "item_id" in plan.columns:
    plan = plan.with_columns(pl.col("item_id").str.replace(r"_[^_]+$", "").alias("dept_id"))
value = (
    pl.col("safety_stock") * pl.col("unit_price") if "unit_price" in plan.columns else pl.lit(None)
)
plan = plan.with_columns(value.alias("safety_stock_value"))


def _first(col: str, fmt: str) -> str:
    if col not in plan.columns:
        return "–"
    vals = plan[col].drop_nulls().unique()
    return fmt.format(vals[0]) if vals.len() == 1 else "per series"


st.caption(
    f"Current plan: target cycle service level {_first('service_level', '{:.1%}')}, lead time "
    f"{_first('lead_time_days', '{} d')}, review period {_first('review_days', '{} d')}."
)
k = st.columns(4)
k[0].metric("Series planned", f"{plan.height:,}", border=True)
k[1].metric("Safety stock (units)", ui.fmt_num(float(plan["safety_stock"].sum())), border=True)
ss_value = plan["safety_stock_value"].sum() if "unit_price" in plan.columns else None
k[2].metric("Safety stock value", ui.fmt_money(ss_value), border=True)
if "expected_total_cost" in plan.columns:
    k[3].metric(
        "Expected cost / year",
        ui.fmt_money(float(plan["expected_total_cost"].sum())),
        border=True,
        help="holding + stock-out + ordering, from the plan's cost model",
    )

st.subheader("By store and department")
agg = (
    plan.group_by("store_id", "dept_id")
    .agg(
        pl.len().alias("series"),
        pl.col("safety_stock").sum(),
        pl.col("reorder_point").sum(),
        pl.col("order_up_to").sum(),
        pl.col("eoq").mean().alias("mean_eoq"),
        pl.col("safety_stock_value").sum(),
    )
    .sort("store_id", "dept_id")
)
left, right = st.columns([3, 2], gap="large")
with left:
    heat = (
        alt.Chart(agg.to_pandas())
        .mark_rect()
        .encode(
            x=alt.X("dept_id:N", title=None, axis=alt.Axis(labelAngle=-30, labelOverlap=False)),
            y=alt.Y("store_id:N", title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color(
                "safety_stock_value:Q", title="safety stock $", scale=alt.Scale(scheme="oranges")
            ),
            tooltip=[
                "store_id",
                "dept_id",
                "series",
                alt.Tooltip("safety_stock:Q", format=",.0f"),
                alt.Tooltip("safety_stock_value:Q", format="$,.0f"),
            ],
        )
    )
    ui.chart(heat.properties(height=300, title="Safety-stock value by store × department"))
with right:
    if "demand_class" in plan.columns:
        bar = ui.demand_class_bar(plan, "series")
        ui.chart(bar.properties(height=300, title="Demand classes (Syntetos–Boylan)"))
with st.expander("Summary table", icon=":material/table:"):
    st.dataframe(agg, hide_index=True, width="stretch")
check = exports.inventory_validation()
if check and isinstance(check.get("levels"), list) and check["levels"]:
    with st.expander(
        "Policy check: simulated vs target service level",
        icon=":material/fact_check:",
        expanded=False,
    ):
        st.caption(str(check.get("method", "")))
        st.dataframe(
            pl.DataFrame(check["levels"], infer_schema_length=None),
            hide_index=True,
            width="stretch",
        )


@st.fragment
def recommendations(plan: pl.DataFrame) -> None:
    """Store/department drill-down and the what-if (reruns alone when its widgets change)."""
    st.subheader("Recommendations")
    f = st.columns([1, 1, 2])
    store = f[0].selectbox("Store", plan["store_id"].unique().sort().to_list(), key="inv_store")
    dept_opts = ["All departments", *plan["dept_id"].unique().sort().to_list()]
    dept_choice = f[1].selectbox(
        "Department", dept_opts, index=min(1, len(dept_opts) - 1), key="inv_dept"
    )
    dept = None if dept_choice == "All departments" else dept_choice
    sub = plan.filter(pl.col("store_id") == store)
    if dept:
        sub = sub.filter(pl.col("dept_id") == dept)
    cols = [
        c
        for c in (
            "id",
            "item_id",
            "demand_class",
            "mean_daily_demand",
            "safety_stock",
            "reorder_point",
            "order_up_to",
            "eoq",
            "service_level",
            "lead_time_days",
            "expected_fill_rate",
            "unit_price",
        )
        if c in sub.columns
    ]
    st.dataframe(
        sub.select(cols).sort("safety_stock", descending=True),
        hide_index=True,
        width="stretch",
        height=280,
        column_config={
            c: st.column_config.NumberColumn(format="%.2f") for c in cols if sub[c].dtype.is_float()
        },
    )
    st.download_button(
        "Download CSV",
        sub.select(cols).write_csv(),
        file_name=f"inventory_{store}.csv",
        mime="text/csv",
        icon=":material/download:",
    )

    st.subheader("What-if: service level and lead time")
    w = st.columns([2, 2, 3])
    base_sl = float(sub["service_level"].median()) if "service_level" in sub.columns else 0.95
    base_lt = int(sub["lead_time_days"].median()) if "lead_time_days" in sub.columns else 7
    sl = w[0].slider(
        "Target service level",
        0.80,
        0.995,
        min(max(base_sl, 0.80), 0.995),
        0.005,
        format="%.3f",
        key="inv_sl",
    )
    lt = w[1].slider("Lead time (days)", 1, 28, min(max(base_lt, 1), 28), key="inv_lt")
    what = whatif.whatif_plan(str(store), dept, sl, lt)
    base = whatif.whatif_plan(str(store), dept, base_sl, base_lt)
    if what is None or base is None:
        st.info("No demand distribution for this selection.")
        return
    m = st.columns(4)
    for i, (label, col, fmt) in enumerate(
        [
            ("Safety stock (units)", "safety_stock", ui.fmt_num),
            ("Reorder points (units)", "reorder_point", ui.fmt_num),
            ("Expected cost / year", "expected_total_cost", ui.fmt_money),
        ]
    ):
        new, old = float(what[col].sum()), float(base[col].sum())
        change = (new / old - 1) * 100 if old else 0.0
        if abs(change) < 0.05:
            m[i].metric(
                label, fmt(new), "same as plan", delta_color="off", delta_arrow="off", border=True
            )
        else:
            m[i].metric(
                label, fmt(new), f"{change:+.1f}% vs plan", delta_color="inverse", border=True
            )
    demand = (what["mean_daily_demand"] * what["review_days"]).to_numpy()
    fill = float((what["expected_fill_rate"].to_numpy() * demand).sum() / max(demand.sum(), 1e-9))
    m[3].metric("Expected fill rate", f"{fill:.1%}", border=True)

    curve = whatif.cost_curve(str(store), dept, lt, sl)
    assert curve is not None
    long = curve.unpivot(
        index="service_level",
        on=[
            "expected_holding_cost",
            "expected_stockout_cost",
            "expected_ordering_cost",
            "expected_total_cost",
        ],
        variable_name="cost",
        value_name="dollars",
    ).with_columns(pl.col("cost").str.replace("expected_", "").str.replace("_cost", ""))
    lines = (
        alt.Chart(long.to_pandas())
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "service_level:Q",
                title="target cycle service level",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y("dollars:Q", title="expected cost per year ($)"),
            color=alt.Color(
                "cost:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(
                    domain=["total", "holding", "stockout", "ordering"],
                    range=[ui.PALETTE["forecast"], "#4c78a8", "#b279a2", "#9d9d9d"],
                ),
            ),
            tooltip=[
                alt.Tooltip("service_level:Q", format=".1%"),
                "cost",
                alt.Tooltip("dollars:Q", format="$,.0f"),
            ],
        )
    )
    rule = (
        alt.Chart(pl.DataFrame({"service_level": [sl]}).to_pandas())
        .mark_rule(strokeDash=[4, 3])
        .encode(x="service_level:Q")
    )
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        ui.chart(
            (lines + rule).properties(
                height=320,
                title=f"Cost vs service level ({store}"
                f"{', ' + dept if dept else ''}, lead time {lt} d)",
            )
        )
    with c2:
        st.dataframe(
            what.select(
                [
                    c
                    for c in (
                        "id",
                        "demand_class",
                        "safety_stock",
                        "reorder_point",
                        "order_up_to",
                        "eoq",
                    )
                    if c in what.columns
                ]
            ).sort("safety_stock", descending=True),
            hide_index=True,
            width="stretch",
            height=320,
            column_config={
                c: st.column_config.NumberColumn(format="%.1f")
                for c in ("safety_stock", "reorder_point", "order_up_to", "eoq")
            },
        )
    st.caption(
        "Demand over lead time + review period is negative binomial with the forecast's mean and "
        "the dispersion fitted on the store's history for that period, as in the plan "
        "(forecasting_assets.inventory: demand_distribution, plan_inventory); costs per year."
    )


recommendations(plan)
