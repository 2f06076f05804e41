"""Baseline forecasts, vectorised over a ``(n_series, n_days)`` history matrix.

Every function takes the history (days up to the forecast origin, oldest first) and returns a
``(n_series, horizon)`` float64 matrix of forecasts. Leading zeros (before a series' first sale)
are not demand: the smoothing methods start at the first non-zero value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forecasting_assets.modeling.metrics import first_nonzero

SEASON = 7
MA_WINDOW = 28
SES_ALPHA = 0.1
CROSTON_ALPHA = 0.1
TSB_ALPHA = 0.1
TSB_BETA = 0.1


def _as_history(history: np.ndarray) -> np.ndarray:
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] == 0:
        raise ValueError("history must be a non-empty (n_series, n_days) matrix")
    return np.nan_to_num(h, nan=0.0)


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """Last observed value repeated."""
    h = _as_history(history)
    return np.repeat(h[:, -1:], horizon, axis=1)


def seasonal_naive(history: np.ndarray, horizon: int, season: int = SEASON) -> np.ndarray:
    """The last ``season`` days repeated (weekly seasonal naive)."""
    h = _as_history(history)
    if h.shape[1] < season:
        return naive(h, horizon)
    last = h[:, -season:]
    idx = np.arange(horizon) % season
    return last[:, idx]


def moving_average(history: np.ndarray, horizon: int, window: int = MA_WINDOW) -> np.ndarray:
    """Mean of the last ``window`` days, flat over the horizon."""
    h = _as_history(history)
    return np.repeat(h[:, -window:].mean(axis=1, keepdims=True), horizon, axis=1)


def ses(history: np.ndarray, horizon: int, alpha: float = SES_ALPHA) -> np.ndarray:
    """Simple exponential smoothing, level initialised at the first non-zero value."""
    h = _as_history(history)
    first = first_nonzero(h)
    level = np.zeros(h.shape[0])
    for t in range(h.shape[1]):
        y = h[:, t]
        level = np.where(t > first, alpha * y + (1 - alpha) * level, np.where(t == first, y, level))
    return np.repeat(level[:, None], horizon, axis=1)


def croston_sba(history: np.ndarray, horizon: int, alpha: float = CROSTON_ALPHA) -> np.ndarray:
    """Croston with the Syntetos-Boylan bias correction: ``(1 - alpha/2) * size / interval``.

    Sizes and intervals are smoothed only on demand days; the first demand initialises
    size = that demand and interval = 1 (leading zeros are not demand).
    """
    h = _as_history(history)
    n = h.shape[0]
    size = np.zeros(n)
    interval = np.ones(n)
    since = np.ones(n)  # periods since the last demand, counting the current day
    started = np.zeros(n, dtype=bool)
    for t in range(h.shape[1]):
        y = h[:, t]
        demand = y > 0
        upd = demand & started
        init = demand & ~started
        size = np.where(upd, size + alpha * (y - size), np.where(init, y, size))
        interval = np.where(
            upd, interval + alpha * (since - interval), np.where(init, 1.0, interval)
        )
        started |= demand
        since = np.where(demand, 1.0, since + 1.0)
    f = np.where(started, (1 - alpha / 2) * size / interval, 0.0)
    return np.repeat(f[:, None], horizon, axis=1)


def tsb(
    history: np.ndarray, horizon: int, alpha: float = TSB_ALPHA, beta: float = TSB_BETA
) -> np.ndarray:
    """Teunter-Syntetos-Babai: smoothed demand probability x smoothed size (updates every day)."""
    h = _as_history(history)
    first = first_nonzero(h)
    n = h.shape[0]
    prob = np.zeros(n)
    size = np.zeros(n)
    for t in range(h.shape[1]):
        y = h[:, t]
        demand = y > 0
        active = t > first
        init = t == first
        prob = np.where(active, prob + beta * (demand - prob), np.where(init, 1.0, prob))
        size = np.where(active & demand, size + alpha * (y - size), np.where(init, y, size))
    return np.repeat((prob * size)[:, None], horizon, axis=1)


BASELINES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    "moving_average": moving_average,
    "ses": ses,
    "croston_sba": croston_sba,
    "tsb": tsb,
}
"""Baseline name (as in backtest_metrics.parquet) -> forecasting function."""
