"""Simulation of a periodic-review order-up-to policy against actual demand, and its backtest.

Timing (backorders): a review happens at the start of day ``k·R`` (k = 0, 1, …); the order
``max(0, S_k − inventory position)`` arrives at the start of day ``k·R + L`` before that day's
demand. Cycle ``k`` is the time between the arrival of order ``k`` and that of order ``k + 1``,
i.e. days ``[k·R + L, k·R + L + R)``; it has a stock-out when net inventory is negative at its end
(net inventory only rises at arrivals). The achieved cycle service level is the share of cycles
without a stock-out; the fill rate is the share of demand served from stock on the day it occurs.
The simulation starts in steady state: net inventory S_0 on hand, nothing on order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from forecasting_assets.inventory.demand import fit_protection_dispersion, level_forecast
from forecasting_assets.inventory.policy import cycle_shortage, demand_quantile


@dataclass(frozen=True)
class SimulationResult:
    """Per-series outcomes of a simulation."""

    cycles: np.ndarray
    """Complete cycles simulated per series."""
    stockout_cycles: np.ndarray
    """Cycles that ended with a backorder."""
    demand: np.ndarray
    """Demand during the evaluated cycles."""
    short: np.ndarray
    """Units not served from stock on the day of their demand, during the evaluated cycles."""
    mean_on_hand: np.ndarray
    """Average end-of-day on-hand stock over the evaluated cycles."""

    @property
    def cycle_service_level(self) -> float:
        """Share of all cycles without a stock-out."""
        total = self.cycles.sum()
        return float(1.0 - self.stockout_cycles.sum() / total) if total else float("nan")

    @property
    def fill_rate(self) -> float:
        """Share of the demand served from stock."""
        total = self.demand.sum()
        return float(1.0 - self.short.sum() / total) if total else float("nan")


def simulate_periodic_review(
    demand: np.ndarray, order_up_to: np.ndarray, lead_time_days: int, review_days: int
) -> SimulationResult:
    """Simulate (R, S) with backorders for every series at once.

    ``demand``: ``(n, T)`` non-negative actual daily demand. ``order_up_to``: ``(n,)`` or
    ``(n, K)`` levels for reviews ``0..K-1`` (the last column repeats if there are more reviews).
    Only cycles that end inside the ``T`` days are counted.
    """
    d = np.asarray(demand, dtype=np.float64)
    n, t_total = d.shape
    lead, review = int(lead_time_days), int(review_days)
    if review < 1 or lead < 0:
        raise ValueError("review_days must be >= 1 and lead_time_days >= 0")
    s = np.asarray(order_up_to, dtype=np.float64).reshape(n, -1)
    n_cycles = max((t_total - lead) // review, 0)
    net = s[:, 0].copy()
    arrivals = np.zeros((n, t_total + lead + 1))
    on_order = np.zeros(n)
    stockouts = np.zeros(n, dtype=np.int64)
    short = np.zeros(n)
    served_demand = np.zeros(n)
    on_hand_sum = np.zeros(n)
    eval_start, eval_end = lead, lead + n_cycles * review
    for t in range(t_total):
        if t % review == 0:
            k = t // review
            level = s[:, min(k, s.shape[1] - 1)]
            qty = np.maximum(level - (net + on_order), 0.0)
            arrivals[:, t + lead] += qty
            on_order += qty
        net += arrivals[:, t]
        on_order -= arrivals[:, t]
        today = d[:, t]
        if eval_start <= t < eval_end:
            short += np.maximum(today - np.maximum(net, 0.0), 0.0)
            served_demand += today
        net -= today
        if eval_start <= t < eval_end:
            on_hand_sum += np.maximum(net, 0.0)
            if (t - lead + 1) % review == 0:
                stockouts += net < 0
    days = max(eval_end - eval_start, 1)
    return SimulationResult(
        cycles=np.full(n, n_cycles, dtype=np.int64),
        stockout_cycles=stockouts,
        demand=served_demand,
        short=short,
        mean_on_hand=on_hand_sum / days,
    )


@dataclass(frozen=True)
class FoldForecast:
    """One backtest fold: the first history column it forecasts and its forecast ``(n, h)``."""

    start: int
    forecast: np.ndarray


def level_folds(
    sales: np.ndarray, n_folds: int, *, fold_days: int = 28, level_window: int = 28
) -> dict[int, FoldForecast]:
    """The last ``n_folds`` blocks of ``fold_days`` days (fold ``n_folds`` is the most recent),
    each forecast flat at the mean of the ``level_window`` days before it: a moving-average
    reference for :func:`backtest_order_up_to`."""
    h = np.asarray(sales, dtype=np.float64)
    folds = {}
    for fold in range(1, n_folds + 1):
        start = h.shape[1] - (n_folds - fold + 1) * fold_days
        if start >= level_window:
            mu = level_forecast(h[:, :start], level_window)
            folds[fold] = FoldForecast(start, np.repeat(mu[:, None], fold_days, axis=1))
    return folds


def review_demand(forecast: np.ndarray, lead_time_days: int, review_days: int) -> np.ndarray:
    """``(n, K)`` forecast demand over the protection period of each review ``k`` of the horizon,
    as the plan sets it: (L + R) × the forecast's daily mean over days ``[k·R, k·R + L + R)``
    (cut at the horizon's end). ``K`` is the number of cycles the horizon completes."""
    f = np.asarray(forecast, dtype=np.float64)
    protection = lead_time_days + review_days
    reviews = max((f.shape[1] - lead_time_days) // review_days, 1)
    return np.column_stack([
        f[:, k * review_days : k * review_days + protection].mean(axis=1) * protection
        for k in range(reviews)
    ])  # fmt: skip


def backtest_order_up_to(
    sales: np.ndarray,
    folds: Mapping[int, FoldForecast],
    service_levels: Sequence[float] = (0.90, 0.95, 0.99),
    *,
    lead_time_days: int = 7,
    review_days: int = 7,
    fit_days: int = 364,
    level_window: int = 28,
) -> pl.DataFrame:
    """Walk-forward validation of the plan's order-up-to levels against actual demand.

    ``sales`` ``(n, T)`` is the history (``NaN`` before launch); ``folds`` holds, per fold, the
    forecasts made at its origin (the model's backtest forecasts, or :func:`level_folds`). For
    each fold, using only days before its origin, the protection-period dispersion is fitted with
    :func:`~forecasting_assets.inventory.demand.fit_protection_dispersion` on the previous
    ``fit_days`` days, every review's S is the ``q`` quantile of a negative binomial with the mean
    of :func:`review_demand` and that dispersion, and the policy is simulated on the fold's actual
    days. Series with no forecast demand over the first protection
    period (nothing is stocked) or not launched in the fold are left out. Returns one row per
    service level and fold plus ``fold = 0`` for all folds: service_level, fold, series, cycles,
    cycle_service_level, fill_rate, expected_fill_rate (the plan's promise for the same cycles),
    mean_on_hand.
    """
    h = np.asarray(sales, dtype=np.float64)
    protection = lead_time_days + review_days
    rows: list[dict[str, float | int]] = []
    results: dict[float, list[_Outcome]] = {float(q): [] for q in service_levels}
    for k, fold in sorted(folds.items()):
        cut, horizon = fold.start, fold.forecast.shape[1]
        if cut < level_window + protection or cut + horizon > h.shape[1]:
            continue
        past, test = h[:, :cut], h[:, cut : cut + horizon]
        disp, _ = fit_protection_dispersion(
            past, protection, level_window=level_window, fit_days=fit_days
        )
        keep = (fold.forecast[:, :protection].sum(axis=1) > 0) & ~np.isnan(test).any(axis=1)
        if not keep.any():
            continue
        mean = review_demand(fold.forecast[keep], lead_time_days, review_days)
        d = disp[keep][:, None]
        for q in service_levels:
            s = demand_quantile(mean, d, q)
            res = simulate_periodic_review(test[keep], s, lead_time_days, review_days)
            # The fill rate the plan expects of these levels, over the same simulated cycles.
            n = int(res.cycles[0]) if len(res.cycles) else 0
            short = cycle_shortage(s, mean, mean * lead_time_days / protection, d)[:, :n]
            outcome = _Outcome(res, float(short.sum()),
                               float(mean[:, :n].sum()) * review_days / protection)  # fmt: skip
            results[float(q)].append(outcome)
            rows.append(_row(float(q), k, int(keep.sum()), [outcome]))
    for q, outcomes in results.items():
        if outcomes:
            rows.append(_row(q, 0, sum(len(o.result.cycles) for o in outcomes), outcomes))
    schema = {
        "service_level": pl.Float64,
        "fold": pl.Int32,
        "series": pl.Int64,
        "cycles": pl.Int64,
        "cycle_service_level": pl.Float64,
        "fill_rate": pl.Float64,
        "expected_fill_rate": pl.Float64,
        "mean_on_hand": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("service_level", "fold")


@dataclass(frozen=True)
class _Outcome:
    """One fold's simulation at one service level, with what the plan expected of it."""

    result: SimulationResult
    expected_short: float
    """Units short the plan expects over the simulated cycles."""
    expected_demand: float
    """Demand the plan expects over the simulated cycles."""


def _row(q: float, fold: int, series: int, outcomes: list[_Outcome]) -> dict[str, float | int]:
    res = [o.result for o in outcomes]
    cycles = sum(int(r.cycles.sum()) for r in res)
    stockouts = sum(int(r.stockout_cycles.sum()) for r in res)
    demand = sum(float(r.demand.sum()) for r in res)
    short = sum(float(r.short.sum()) for r in res)
    expected_short = sum(o.expected_short for o in outcomes)
    expected_demand = sum(o.expected_demand for o in outcomes)
    on_hand = np.concatenate([r.mean_on_hand for r in res])
    return {
        "service_level": q,
        "fold": fold,
        "series": series,
        "cycles": cycles,
        "cycle_service_level": 1.0 - stockouts / cycles if cycles else float("nan"),
        "fill_rate": 1.0 - short / demand if demand else float("nan"),
        "expected_fill_rate": (
            1.0 - expected_short / expected_demand if expected_demand else float("nan")
        ),
        "mean_on_hand": float(on_hand.mean()) if len(on_hand) else float("nan"),
    }
