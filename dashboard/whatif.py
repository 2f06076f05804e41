"""The Inventory page's what-if: the plan recomputed for a store (and department) at another
service level and lead time.

The protection-period demand comes from ``forecasting_assets.inventory.demand.demand_distribution``
(the function the ``inventory_plan`` asset uses) on the store's history matrix and the forecasts,
for the what-if lead time + each series' review period from the plan; the policy and the cost
curve from ``plan_inventory`` / ``cost_vs_service_curve``. The distribution is cached per store
and lead time (a department is a filter of it), the curve per store, department and lead time, so
moving the service-level slider computes one level. At the plan's own lead time the what-if
starts from the plan's distribution (no history read).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import exports, history
from dashboard.paths import TTL, export_path
from forecasting_assets import contracts, store
from forecasting_assets.inventory import cost_vs_service_curve, plan_inventory
from forecasting_assets.inventory.demand import demand_distribution

CURVE_LEVELS = (0.80, 0.85, 0.90, 0.95, 0.975, 0.99, 0.995)
PLAN_COLUMNS = ["id", "item_id", "store_id", "dept_id", "review_days", "unit_price"]
"""What the what-if takes from the inventory plan: the series and their own parameters."""
DISTRIBUTION_COLUMNS = ["demand_class", "adi", "cv2", "mean_daily_demand", "dispersion"]
"""What ``demand_distribution`` adds, also in the plan."""


def _version() -> str:
    """Version of the what-if's inputs: the plan, the forecasts and sales_long."""
    sl = history.sales_long()
    files = (contracts.INVENTORY_PLAN_FILE, contracts.FORECASTS_FILE)
    return ":".join(
        [*(store.file_version(export_path(f)) or "" for f in files), sl[1] if sl else ""]
    )


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=16)
def _store_distribution(store_id: str, lead_time: int, version: str) -> pl.DataFrame | None:
    del version
    plan, fc, found = exports.inventory_plan(), exports.forecasts(), history.store_history(store_id)
    if plan is None or fc is None or found is None:
        return None
    items, matrix = found
    series = plan.filter(pl.col("store_id") == store_id).select(
        pl.col(PLAN_COLUMNS[:4]).cast(pl.String), *PLAN_COLUMNS[4:]
    )
    row = {item: i for i, item in enumerate(items.to_list())}
    series = series.filter(pl.col("item_id").is_in(list(row)))
    if not series.height:
        return None
    return demand_distribution(
        series,
        matrix[[row[i] for i in series["item_id"].to_list()]],
        fc.filter(pl.col("store_id").cast(pl.String) == store_id),
        series["review_days"].cast(pl.Int64) + lead_time,
    )


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=16)
def _planned_distribution(store_id: str, lead_time: int, version: str) -> pl.DataFrame | None:
    """The plan's own distribution of a store if every series is planned at ``lead_time``."""
    del version
    plan = exports.inventory_plan()
    if plan is None:
        return None
    sub = plan.filter(pl.col("store_id") == store_id)
    if not sub.height or (sub["lead_time_days"] != lead_time).any():
        return None
    return sub.select(
        pl.col(PLAN_COLUMNS[:4]).cast(pl.String),
        *PLAN_COLUMNS[4:],
        *DISTRIBUTION_COLUMNS,
    )


def demand_for(store_id: str, dept_id: str | None, lead_time: int) -> pl.DataFrame | None:
    """Per series of a store (and department): demand class, the forecast's daily mean over
    ``lead_time`` + review days, the dispersion of that period's demand, and the plan's
    review period and unit price.

    At the plan's own lead time this is the plan's distribution (computed by the same function
    in the pipeline), which needs no history read.
    """
    version = _version()
    dist = _planned_distribution(store_id, int(lead_time), version)
    if dist is None:
        dist = _store_distribution(store_id, int(lead_time), version)
    if dist is None or not dept_id:
        return dist
    dist = dist.filter(pl.col("dept_id") == dept_id)
    return dist if dist.height else None


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=128)
def _whatif_plan(
    store_id: str, dept_id: str | None, service_level: float, lead_time: int, version: str
) -> pl.DataFrame | None:
    del version
    dist = demand_for(store_id, dept_id, lead_time)
    if dist is None:
        return None
    return plan_inventory(dist, service_level=service_level, lead_time_days=lead_time)


def whatif_plan(
    store_id: str, dept_id: str | None, service_level: float, lead_time: int
) -> pl.DataFrame | None:
    """plan_inventory for one store (and department) at a what-if service level and lead time."""
    return _whatif_plan(store_id, dept_id, round(service_level, 4), int(lead_time), _version())


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _cost_curve(
    store_id: str, dept_id: str | None, lead_time: int, levels: tuple[float, ...], version: str
) -> pl.DataFrame | None:
    del version
    dist = demand_for(store_id, dept_id, lead_time)
    if dist is None:
        return None
    return cost_vs_service_curve(dist, service_levels=levels, lead_time_days=lead_time)


def cost_curve(
    store_id: str, dept_id: str | None, lead_time: int, extra_level: float | None = None
) -> pl.DataFrame | None:
    """cost_vs_service_curve over CURVE_LEVELS plus ``extra_level`` for one selection.

    The extra level is computed (and cached) apart, so moving the service-level slider adds one
    level instead of recomputing the curve.
    """
    version = _version()
    curve = _cost_curve(store_id, dept_id, int(lead_time), CURVE_LEVELS, version)
    extra = None if extra_level is None else round(extra_level, 4)
    if curve is None or extra is None or extra in CURVE_LEVELS:
        return curve
    point = _cost_curve(store_id, dept_id, int(lead_time), (extra,), version)
    return curve if point is None else pl.concat([curve, point]).sort("service_level")
