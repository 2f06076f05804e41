"""The inventory plan of every series: its forecast protection-period demand, the policy, checks.

:func:`build_plan` turns the last history days of every series (see
:func:`forecasting_assets.monitoring.history.history_window`) and the forecasts export into
``exports/inventory_plan.parquet``; :func:`check_plan` validates such a plan.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from forecasting_assets.contracts import CheckOutcome
from forecasting_assets.inventory.demand import (
    DEMAND_CLASSES,
    demand_distribution,
)
from forecasting_assets.inventory.policy import plan_inventory, resolve_parameters

PLAN_COLUMNS = (
    "id", "item_id", "store_id", "dept_id", "demand_class", "adi", "cv2", "mean_daily_demand",
    "dispersion", "lead_time_days", "review_days", "service_level", "expected_demand_lt_review",
    "safety_stock", "reorder_point", "order_up_to", "eoq", "expected_units_short_per_cycle",
    "expected_fill_rate", "expected_on_hand", "expected_holding_cost", "expected_stockout_cost",
    "expected_ordering_cost", "expected_total_cost", "unit_price",
)  # fmt: skip
"""Columns of ``inventory_plan.parquet``, in order."""
NON_NEGATIVE = (
    "mean_daily_demand", "expected_demand_lt_review", "reorder_point", "order_up_to", "eoq",
    "expected_holding_cost", "expected_stockout_cost", "unit_price",
)  # fmt: skip
POLICY_PARAMETERS = (
    "service_level", "lead_time_days", "review_days", "ordering_cost", "holding_cost_rate",
    "stockout_cost_rate",
)  # fmt: skip


class InventoryParams(BaseModel):
    """Policy defaults, per store/department overrides and the validation set-up."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    service_level: float = 0.95
    lead_time_days: int = 7
    review_days: int = 7
    ordering_cost: float = 20.0
    """Cost per order."""
    holding_cost_rate: float = 0.25
    """Holding cost per unit-year as a share of the unit price."""
    stockout_cost_rate: float = 1.0
    """Cost per unit short as a multiple of the unit price."""
    overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    """``{"CA_1": {...}, "FOODS_3": {...}, "CA_1/FOODS_3": {...}}`` → parameter values."""
    classification_days: int = 364
    """History days for ADI / CV² and the dispersion fit."""
    level_window: int = 28
    validation_series: int = 1000
    """Series sampled for the validation on the model's backtest folds."""
    validation_levels: list[float] = Field(default_factory=lambda: [0.90, 0.95, 0.99])
    validation_tolerance: float = 0.03
    seed: int = 0

    def defaults(self) -> dict[str, float]:
        """The policy parameters every series gets unless overridden."""
        return {name: getattr(self, name) for name in POLICY_PARAMETERS}

    def plan_days(self) -> int:
        """History days the plan needs: classification, level window, longest protection."""
        longest = self.lead_time_days + self.review_days
        for values in self.overrides.values():
            longest = max(longest, int(values.get("lead_time_days", self.lead_time_days))
                          + int(values.get("review_days", self.review_days)))  # fmt: skip
        return self.classification_days + self.level_window + longest


def fill_prices(frame: pl.DataFrame) -> pl.DataFrame:
    """Missing unit prices: the department's median, else 1.0."""
    by = "dept_id" if "dept_id" in frame.columns else None
    fill = pl.col("unit_price").median().over(by) if by else pl.col("unit_price").median()
    return frame.with_columns(pl.col("unit_price").fill_null(fill).fill_null(1.0))


def build_plan(
    series: pl.DataFrame, matrix: np.ndarray, forecasts: pl.DataFrame, params: InventoryParams
) -> pl.DataFrame:
    """The plan (:data:`PLAN_COLUMNS`) of every series of ``series`` with a forecast.

    ``matrix`` rows follow ``series`` and end on the last history day; its last
    :meth:`InventoryParams.plan_days` columns are used.
    """
    series = fill_prices(series)
    defaults = params.defaults()
    parameters = resolve_parameters(series, defaults, dict(params.overrides))
    days = params.plan_days()
    dist = demand_distribution(
        series, matrix[:, -days:], forecasts,
        parameters["lead_time_days"] + parameters["review_days"],
        level_window=params.level_window, fit_days=params.classification_days,
    )  # fmt: skip
    dist = dist.join(parameters.select("id", *defaults), on="id", how="left")
    plan = plan_inventory(dist)
    return plan.select([c for c in PLAN_COLUMNS if c in plan.columns])


def check_plan(plan: pl.DataFrame) -> CheckOutcome:
    """Columns, unique ids, no nulls, non-negative, S >= reorder point, valid classes."""
    required = [c for c in PLAN_COLUMNS if c not in ("dept_id",)]
    missing = [c for c in required if c not in plan.columns]
    if missing:
        return CheckOutcome(False, f"missing columns {missing}")
    if plan.height == 0:
        return CheckOutcome(False, "the plan is empty")
    dupes = plan.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if dupes:
        return CheckOutcome(False, f"duplicate ids {dupes[:10]}")
    numeric = [c for c in NON_NEGATIVE if c in plan.columns]
    nulls = [c for c in numeric if plan[c].is_null().any() or plan[c].is_nan().any()]
    if nulls:
        return CheckOutcome(False, f"null/NaN values in {nulls}")
    negative = [c for c in numeric if (plan[c] < 0).any()]
    if negative:
        return CheckOutcome(False, f"negative values in {negative}")
    failures = {
        "service_level outside (0, 1)": (pl.col("service_level") <= 0)
        | (pl.col("service_level") >= 1),
        "order_up_to < reorder_point": pl.col("order_up_to") < pl.col("reorder_point"),
        "unknown demand_class": ~pl.col("demand_class").is_in(list(DEMAND_CLASSES)),
    }
    for what, bad in failures.items():
        rows = plan.filter(bad)
        if rows.height:
            return CheckOutcome(False, f"{what} for {rows['id'].head(10).to_list()}")
    return CheckOutcome(True, f"{plan.height} series")
