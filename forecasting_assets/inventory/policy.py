"""Periodic-review order-up-to policy from a protection-period demand distribution.

Demand over ``P`` days of a series is modelled as a negative binomial with mean ``μ·P`` (``μ`` =
mean daily forecast) and variance ``dispersion·μ·P`` (Poisson when ``dispersion <= 1``): daily
quantiles are never added up. With lead time ``L`` and review period ``R``:

* ``order_up_to`` S = the service-level quantile of demand over ``L + R`` days, so that the
  probability of no stock-out in a replenishment cycle (cycle service level) is the target;
* ``safety_stock`` = S − expected demand over ``L + R``;
* ``reorder_point`` = the service-level quantile of demand over ``L`` days (the trigger level of
  the continuous-review alternative that orders ``eoq`` units);
* ``eoq`` = √(2·annual demand·ordering cost / (holding rate·unit price));
* expected costs per year: holding = rate·price·E[on hand] with E[on hand] ≈ SS + μ·R/2 +
  E[backorders at cycle end]; stock-out = rate·price·E[units short per cycle]·365/R; ordering =
  cost·365/R·P(demand in R > 0). Expected units short per cycle are
  E[(D_{L+R} − S)⁺] − E[(D_L − S)⁺] (Silver, Pyke & Peterson), fill rate = 1 − short/μ·R.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

DAYS_PER_YEAR = 365.0
_POISSON_EPS = 1e-9


@dataclass(frozen=True)
class Costs:
    """Cost parameters: per order, per unit-year held (fraction of price), per unit short."""

    ordering_cost: float = 20.0
    holding_cost_rate: float = 0.25
    stockout_cost_rate: float = 1.0


def _nb_params(mean: np.ndarray, dispersion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy ``nbinom`` (n, p) with the given mean and variance = dispersion·mean."""
    d = np.maximum(dispersion, 1.0 + _POISSON_EPS)
    return mean / (d - 1.0), 1.0 / d


def demand_quantile(mean: np.ndarray, dispersion: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """Smallest integer S with P(D <= S) >= q for D ~ NB (or Poisson) with the given moments."""
    mean, dispersion, q = np.broadcast_arrays(
        np.asarray(mean, float), np.asarray(dispersion, float), np.asarray(q, float)
    )
    out = np.zeros(mean.shape)
    pos = mean > 0
    pois = pos & (dispersion <= 1.0 + _POISSON_EPS)
    nb = pos & ~pois
    if pois.any():
        out[pois] = stats.poisson.ppf(q[pois], mean[pois])
    if nb.any():
        n, p = _nb_params(mean[nb], dispersion[nb])
        out[nb] = stats.nbinom.ppf(q[nb], n, p)
    return out


def _sf(x: np.ndarray, mean: np.ndarray, dispersion: np.ndarray, shift: float) -> np.ndarray:
    """P(X > x) for X ~ NB(n + shift, p) (Poisson(mean) where dispersion <= 1)."""
    out = np.zeros(mean.shape)
    pos = mean > 0
    pois = pos & (dispersion <= 1.0 + _POISSON_EPS)
    nb = pos & ~pois
    out[pois] = stats.poisson.sf(x[pois], mean[pois])
    if nb.any():
        n, p = _nb_params(mean[nb], dispersion[nb])
        out[nb] = stats.nbinom.sf(x[nb], n + shift, p)
    return out


def expected_shortage(s: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """E[(D − s)⁺] for integer ``s >= 0`` in closed form.

    Uses ``k·pmf(k; n, p) = μ·pmf(k − 1; n + 1, p)`` (NB; for Poisson the same with Poisson(μ)):
    E[(D − s)⁺] = μ·P(Y > s − 1) − s·P(D > s), ``Y ~ NB(n + 1, p)``.
    """
    s, mean, dispersion = np.broadcast_arrays(
        np.asarray(s, float), np.asarray(mean, float), np.asarray(dispersion, float)
    )
    tail_y = _sf(s - 1.0, mean, dispersion, shift=1.0)
    tail_x = _sf(s, mean, dispersion, shift=0.0)
    return np.maximum(mean * tail_y - s * tail_x, 0.0)


def cycle_shortage(
    order_up_to: np.ndarray,
    mean_protection: np.ndarray,
    mean_lead: np.ndarray,
    dispersion: np.ndarray,
) -> np.ndarray:
    """Expected units short in a review cycle of an (R, S) policy with backorders:
    E[(D_{L+R} − S)⁺] − E[(D_L − S)⁺]."""
    end = expected_shortage(order_up_to, mean_protection, dispersion)
    return np.maximum(end - expected_shortage(order_up_to, mean_lead, dispersion), 0.0)


def prob_positive(mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """P(D > 0)."""
    mean = np.asarray(mean, float)
    dispersion = np.broadcast_to(np.asarray(dispersion, float), mean.shape)
    return _sf(np.zeros(mean.shape), mean, dispersion, shift=0.0)


def eoq(
    annual_demand: np.ndarray, ordering_cost: np.ndarray, holding_cost_per_unit_year: np.ndarray
) -> np.ndarray:
    """Economic order quantity √(2·D·K/h); 0 without demand, ``nan`` without holding cost."""
    d = np.asarray(annual_demand, float)
    h = np.asarray(holding_cost_per_unit_year, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.sqrt(2.0 * d * np.asarray(ordering_cost, float) / h)
    return np.where(d > 0, np.where(h > 0, q, np.nan), 0.0)


_PARAMS = (
    "service_level",
    "lead_time_days",
    "review_days",
    "ordering_cost",
    "holding_cost_rate",
    "stockout_cost_rate",
)


def _param(frame: pl.DataFrame, name: str, override: float | None, default: float) -> np.ndarray:
    if override is not None:
        return np.full(frame.height, float(override))
    if name in frame.columns:
        return frame[name].fill_null(default).cast(pl.Float64).to_numpy()
    return np.full(frame.height, float(default))


def _parameters(
    distribution: pl.DataFrame,
    service_level: float | None,
    lead_time_days: int | None,
    review_days: int | None,
    costs: Costs | None,
) -> dict[str, np.ndarray]:
    """Per-row parameter arrays: a scalar argument, else the row's column, else the default."""
    base = costs or Costs()
    overrides = {
        "service_level": service_level,
        "lead_time_days": lead_time_days,
        "review_days": review_days,
        "ordering_cost": costs.ordering_cost if costs else None,
        "holding_cost_rate": costs.holding_cost_rate if costs else None,
        "stockout_cost_rate": costs.stockout_cost_rate if costs else None,
    }
    defaults = {
        "service_level": 0.95,
        "lead_time_days": 7,
        "review_days": 7,
        "ordering_cost": base.ordering_cost,
        "holding_cost_rate": base.holding_cost_rate,
        "stockout_cost_rate": base.stockout_cost_rate,
    }
    par = {k: _param(distribution, k, overrides[k], defaults[k]) for k in _PARAMS}
    sl = par["service_level"]
    if np.any((sl <= 0) | (sl >= 1)):
        raise ValueError("service_level must be in (0, 1)")
    if np.any(par["lead_time_days"] < 0) or np.any(par["review_days"] < 1):
        raise ValueError("lead_time_days must be >= 0 and review_days >= 1")
    par["lead_time_days"] = np.maximum(np.round(par["lead_time_days"]), 0.0)
    par["review_days"] = np.maximum(np.round(par["review_days"]), 1.0)
    par["mean_daily_demand"] = np.maximum(
        distribution["mean_daily_demand"].fill_null(0.0).cast(pl.Float64).to_numpy(), 0.0
    )
    par["dispersion"] = np.maximum(
        distribution["dispersion"].fill_null(1.0).cast(pl.Float64).to_numpy(), 1.0
    )
    par["unit_price"] = distribution["unit_price"].cast(pl.Float64).to_numpy()
    return par


def _policy(par: dict[str, np.ndarray], reorder_point: bool = True) -> dict[str, np.ndarray]:
    """The policy and its expected costs per row, from :func:`_parameters` arrays."""
    mu, disp, price = par["mean_daily_demand"], par["dispersion"], par["unit_price"]
    sl, lead, review = par["service_level"], par["lead_time_days"], par["review_days"]
    mu_p = mu * (lead + review)
    mu_l = mu * lead
    mu_r = mu * review
    order_up_to = demand_quantile(mu_p, disp, sl)
    safety = order_up_to - mu_p
    backorder_end = expected_shortage(order_up_to, mu_p, disp)
    short = cycle_shortage(order_up_to, mu_p, mu_l, disp)
    with np.errstate(divide="ignore", invalid="ignore"):
        fill = np.where(mu_r > 0, 1.0 - short / mu_r, 1.0)
    on_hand = np.maximum(safety + mu_r / 2.0 + backorder_end, 0.0)
    cycles = DAYS_PER_YEAR / review
    holding = par["holding_cost_rate"] * price * on_hand
    stockout = par["stockout_cost_rate"] * price * short * cycles
    ordering = par["ordering_cost"] * cycles * prob_positive(mu_r, disp)
    out = {
        "expected_demand_lt_review": mu_p,
        "safety_stock": safety,
        "order_up_to": order_up_to,
        "expected_units_short_per_cycle": short,
        "expected_fill_rate": np.clip(fill, 0.0, 1.0),
        "expected_on_hand": on_hand,
        "expected_holding_cost": holding,
        "expected_stockout_cost": stockout,
        "expected_ordering_cost": ordering,
        "expected_total_cost": holding + stockout + ordering,
    }
    if reorder_point:
        out["reorder_point"] = demand_quantile(mu_l, disp, sl)
        out["eoq"] = eoq(mu * DAYS_PER_YEAR, par["ordering_cost"], par["holding_cost_rate"] * price)
    return out


def plan_inventory(
    distribution: pl.DataFrame,
    service_level: float | None = None,
    lead_time_days: int | None = None,
    review_days: int | None = None,
    costs: Costs | None = None,
) -> pl.DataFrame:
    """Inventory plan, one row per row of ``distribution``.

    ``distribution`` needs ``id``, ``mean_daily_demand`` (forecast units/day over the protection
    period), ``dispersion`` (variance/mean of protection-period demand, >= 1) and ``unit_price``;
    ``item_id``, ``store_id``, ``dept_id``, ``demand_class``, ``adi``, ``cv2`` are carried
    through. Per-row parameter columns (``service_level``, ``lead_time_days``, ``review_days``,
    ``ordering_cost``, ``holding_cost_rate``, ``stockout_cost_rate``) are used where present
    (per store/department overrides); a scalar argument overrides them for every row (what-if).
    Defaults: 95 %, 7 days, 7 days, :class:`Costs`.
    """
    par = _parameters(distribution, service_level, lead_time_days, review_days, costs)
    pol = _policy(par)
    keep = [
        c
        for c in ("id", "item_id", "store_id", "dept_id", "demand_class", "adi", "cv2")
        if c in distribution.columns
    ]
    return distribution.select(keep).with_columns(
        pl.Series("mean_daily_demand", par["mean_daily_demand"]),
        pl.Series("dispersion", par["dispersion"]),
        pl.Series("lead_time_days", par["lead_time_days"].astype(np.int32)),
        pl.Series("review_days", par["review_days"].astype(np.int32)),
        pl.Series("service_level", par["service_level"]),
        *(
            pl.Series(name, pol[name])
            for name in (
                "expected_demand_lt_review",
                "safety_stock",
                "reorder_point",
                "order_up_to",
                "eoq",
                "expected_units_short_per_cycle",
                "expected_fill_rate",
                "expected_on_hand",
                "expected_holding_cost",
                "expected_stockout_cost",
                "expected_ordering_cost",
                "expected_total_cost",
            )
        ),
        pl.Series("unit_price", par["unit_price"]),
    )


def cost_vs_service_curve(
    distribution: pl.DataFrame,
    service_levels: Sequence[float] = (0.80, 0.85, 0.90, 0.95, 0.975, 0.99, 0.995),
    lead_time_days: int | None = None,
    review_days: int | None = None,
    costs: Costs | None = None,
) -> pl.DataFrame:
    """Totals over the series of ``distribution`` for each target service level.

    Columns: service_level, safety_stock_units, safety_stock_value, expected_holding_cost,
    expected_stockout_cost, expected_ordering_cost, expected_total_cost (per year) and
    expected_fill_rate (demand-weighted). All levels are computed in one vectorised pass (the
    same maths as :func:`plan_inventory`, without the reorder point and EOQ it does not need).
    """
    levels = np.asarray(service_levels, dtype=np.float64)
    n, k = distribution.height, len(levels)
    par = _parameters(distribution, None, lead_time_days, review_days, costs)
    par = {name: np.tile(values, k) for name, values in par.items()}  # level-major blocks
    par["service_level"] = np.repeat(levels, n)
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError("service_level must be in (0, 1)")
    pol = _policy(par, reorder_point=False)

    def total(values: np.ndarray) -> np.ndarray:
        return values.reshape(k, n).sum(axis=1)

    demand = total(par["mean_daily_demand"] * par["review_days"])
    served = total(pol["expected_fill_rate"] * par["mean_daily_demand"] * par["review_days"])
    with np.errstate(divide="ignore", invalid="ignore"):
        fill = np.where(demand > 0, served / demand, 1.0)
    return pl.DataFrame(
        {
            "service_level": levels,
            "safety_stock_units": total(pol["safety_stock"]),
            "safety_stock_value": total(pol["safety_stock"] * par["unit_price"]),
            "expected_holding_cost": total(pol["expected_holding_cost"]),
            "expected_stockout_cost": total(pol["expected_stockout_cost"]),
            "expected_ordering_cost": total(pol["expected_ordering_cost"]),
            "expected_total_cost": total(pol["expected_total_cost"]),
            "expected_fill_rate": fill,
        }
    )


PARAMETER_NAMES = _PARAMS
"""Per-row parameters that overrides may set."""


def resolve_parameters(
    frame: pl.DataFrame,
    defaults: dict[str, float],
    overrides: dict[str, dict[str, float]] | None = None,
) -> pl.DataFrame:
    """Add one column per parameter: defaults, then overrides by store, department, store/dept.

    ``overrides`` keys are a ``store_id`` (``"CA_1"``), a ``dept_id`` (``"FOODS_3"``) or both
    joined by ``/`` (``"CA_1/FOODS_3"``); the most specific match wins (store/dept > dept > store).
    Values map parameter names (:data:`PARAMETER_NAMES`) to numbers.
    """
    overrides = overrides or {}
    unknown = {k for v in overrides.values() for k in v} - set(_PARAMS)
    if unknown:
        raise ValueError(f"unknown override parameter(s) {sorted(unknown)}; allowed: {_PARAMS}")
    missing = set(_PARAMS) - set(defaults)
    if missing:
        raise ValueError(f"defaults lack {sorted(missing)}")
    store = frame["store_id"].cast(pl.String) if "store_id" in frame.columns else None
    dept = frame["dept_id"].cast(pl.String) if "dept_id" in frame.columns else None
    out = frame.with_columns(pl.lit(float(defaults[p])).alias(p) for p in _PARAMS)
    none = pl.Series([False] * frame.height)
    matches: list[tuple[int, pl.Series, dict[str, float]]] = []
    for key, values in overrides.items():
        if "/" in key:
            s_key, d_key = key.split("/", 1)
            if store is not None and dept is not None:
                matches.append((3, (store == s_key) & (dept == d_key), values))
        elif dept is not None and (dept == key).any():
            matches.append((2, dept == key, values))
        elif store is not None:
            matches.append((1, store == key, values))
        else:
            matches.append((1, none, values))
    for _, mask, values in sorted(matches, key=lambda m: m[0]):
        if mask.any():
            out = out.with_columns(
                pl.when(mask).then(pl.lit(float(v))).otherwise(pl.col(p)).alias(p)
                for p, v in values.items()
            )
    return out
