"""Inventory policies computed from demand forecasts, and their simulation (pure: numpy/scipy/polars).

* :mod:`.demand` – demand statistics (ADI, CV²), demand classes, fit of the protection-period
  error distribution on history.
* :mod:`.policy` – order-up-to / reorder-point quantiles of a negative binomial (or Poisson)
  protection-period demand, EOQ, expected costs, :func:`plan_inventory` and
  :func:`cost_vs_service_curve` (used by the dashboard's what-if).
* :mod:`.simulation` – day-by-day simulation of a periodic-review order-up-to policy and the
  walk-forward backtest that measures, on backtest folds' forecasts, the achieved cycle service
  level and fill rate.
* :mod:`.plan` – the plan of every series from its history and forecast (``inventory_plan``
  export), its parameters and its check.
* :mod:`.validation` – the policy simulated on history against its targets
  (``inventory_validation.json``) and its check.
"""

from forecasting_assets.inventory.demand import (
    ADI_CUTOFF,
    CV2_CUTOFF,
    DEMAND_CLASSES,
    classify_demand,
    demand_statistics,
    fit_protection_dispersion,
)
from forecasting_assets.inventory.policy import (
    Costs,
    cost_vs_service_curve,
    demand_quantile,
    eoq,
    expected_shortage,
    plan_inventory,
    resolve_parameters,
)
from forecasting_assets.inventory.simulation import (
    FoldForecast,
    SimulationResult,
    backtest_order_up_to,
    level_folds,
    review_demand,
    simulate_periodic_review,
)

__all__ = [
    "ADI_CUTOFF",
    "CV2_CUTOFF",
    "DEMAND_CLASSES",
    "Costs",
    "FoldForecast",
    "SimulationResult",
    "backtest_order_up_to",
    "classify_demand",
    "cost_vs_service_curve",
    "demand_quantile",
    "demand_statistics",
    "eoq",
    "expected_shortage",
    "fit_protection_dispersion",
    "level_folds",
    "plan_inventory",
    "resolve_parameters",
    "review_demand",
    "simulate_periodic_review",
]
