"""M5 accuracy and uncertainty metrics (pure numpy / scipy.sparse / polars).

Layout: a *panel* is a ``(n_series, n_days)`` float matrix whose rows follow a ``hierarchy`` frame
(one row per bottom series with ``item_id, dept_id, cat_id, store_id, state_id``). The 12 M5
aggregation levels are built once with sparse 0/1 aggregation matrices, so every level is one
sparse matrix product (fast on 30k series).

Definitions (ARCHITECTURE.md §5):

* scale of a series = mean over its history, **from its first non-zero value**, of
  ``(y_t - y_{t-1})**2`` (RMSSE) or ``|y_t - y_{t-1}|`` (SPL). Aggregated series are trimmed on
  their own first non-zero value.
* RMSSE = ``sqrt(mean_h (y - yhat)**2 / scale)``.
* SPL of a series and quantile = mean pinball loss over the horizon / its absolute scale;
  WSPL = ``sum_levels 1/12 * sum w * mean over the nine M5 quantiles of SPL`` (M5 uncertainty).
* weight of a series = its share of dollar sales (units x price) over the last 28 training days,
  within its level (each level's weights sum to 1); WRMSSE = ``sum_levels 1/12 * sum w * RMSSE``.

Zero / undefined scale (documented guard): a series whose trimmed history never changes
(e.g. constant, or a single non-zero on the last day) has scale 0, and a series that never sold
has no scale at all. Such a series keeps its dollar weight (it is *not* dropped), and its scale is
replaced by the mean of ``y**2`` over its trimmed history (so its RMSSE becomes an error relative
to its own level); if that is 0 too (never sold), by 1.0. A never-sold series has no dollar sales,
so its weight is 0 and the guard cannot change the WRMSSE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from forecasting_assets.contracts import BOTTOM_LEVEL as BOTTOM_LEVEL
from forecasting_assets.contracts import M5_LEVELS as M5_LEVELS

M5_QUANTILES: tuple[float, ...] = (0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995)
"""The nine quantile levels the M5 uncertainty track scored (WSPL)."""

EPS_GUARD_FALLBACK = 1.0


def level_codes(hierarchy: pl.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, pl.DataFrame]:
    """Group code (0..G-1) of every bottom series for a level, and the level's keys (G rows).

    Groups are numbered in order of first appearance in ``hierarchy``.
    """
    n = hierarchy.height
    if not cols:
        return np.zeros(n, dtype=np.int64), pl.DataFrame({"level_id": ["Total"]})
    keys = hierarchy.select([pl.col(c).cast(pl.String) for c in cols])
    codes_frame = keys.with_row_index("_row").with_columns(
        pl.struct(list(cols)).rank("dense").alias("_rank")
    )
    # rank("dense") orders groups lexically; renumber by first appearance for stable output.
    first = codes_frame.group_by("_rank").agg(pl.col("_row").min()).sort("_row")
    remap = np.empty(first.height, dtype=np.int64)
    remap[first["_rank"].to_numpy() - 1] = np.arange(first.height)
    codes = remap[codes_frame["_rank"].to_numpy() - 1]
    uniq = keys[first["_row"].to_numpy()]
    level_id = uniq.select(pl.concat_str(list(cols), separator="_").alias("level_id"))
    return codes, pl.concat([level_id, uniq], how="horizontal")


def aggregation_matrix(codes: np.ndarray, n_groups: int | None = None) -> sp.csr_matrix:
    """Sparse ``(G, n)`` 0/1 matrix summing bottom series into their groups."""
    n = codes.shape[0]
    g = int(codes.max()) + 1 if n_groups is None else n_groups
    return sp.csr_matrix((np.ones(n, dtype=np.float64), (codes, np.arange(n))), shape=(g, n))


def first_nonzero(history: np.ndarray) -> np.ndarray:
    """Index of the first non-zero value per row (``n_days`` when the row is all zero)."""
    nz = history != 0
    return np.where(nz.any(axis=1), nz.argmax(axis=1), history.shape[1])


def raw_scale(history: np.ndarray, *, absolute: bool = False) -> np.ndarray:
    """Unguarded scale per row: mean of squared (or absolute) day-to-day changes after the first
    non-zero value. NaN where fewer than two trimmed days exist."""
    history = np.asarray(history, dtype=np.float64)
    t = history.shape[1]
    first = first_nonzero(history)
    d = np.diff(history, axis=1)
    d = np.abs(d, out=d) if absolute else np.multiply(d, d, out=d)
    # Before the first non-zero value every change is 0 but the step onto it: zero that one.
    jump = np.flatnonzero((first > 0) & (first < t))
    d[jump, first[jump] - 1] = 0.0
    total = d.sum(axis=1)
    count = np.maximum(t - 1 - first, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def guarded_scale(history: np.ndarray, *, absolute: bool = False) -> np.ndarray:
    """Scale with the documented guard for zero/undefined scales (see module docstring)."""
    history = np.asarray(history, dtype=np.float64)
    scale = raw_scale(history, absolute=absolute)
    bad = ~(scale > 0)
    if bad.any():
        sub = history[bad]
        first = first_nonzero(sub)
        mask = np.arange(sub.shape[1])[None, :] >= first[:, None]
        vals = np.abs(sub) if absolute else sub * sub
        count = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(
                count > 0, np.where(mask, vals, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0
            )
        scale[bad] = np.where(level > 0, level, EPS_GUARD_FALLBACK)
    return scale


def rmsse(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """RMSSE per row given each row's (guarded) squared scale."""
    mse = np.mean((np.asarray(actual, np.float64) - np.asarray(forecast, np.float64)) ** 2, axis=1)
    return np.sqrt(mse / scale)


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error over all cells."""
    return float(np.mean(np.abs(np.asarray(actual, np.float64) - forecast)))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error over all cells."""
    return float(np.sqrt(np.mean((np.asarray(actual, np.float64) - forecast) ** 2)))


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of forecast - actual (positive = over-forecast)."""
    return float(np.mean(np.asarray(forecast, np.float64) - actual))


def dollar_weights(dollar_sales: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Share of dollar sales per group (sums to 1; uniform if there are no sales at all)."""
    dollars = np.nan_to_num(np.asarray(dollar_sales, np.float64), nan=0.0)
    per_group = np.bincount(codes, weights=dollars, minlength=n_groups)
    total = per_group.sum()
    if total <= 0:
        return np.full(n_groups, 1.0 / n_groups)
    return per_group / total


def pinball_loss(
    actual: np.ndarray, qforecast: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """Mean pinball loss per row and quantile: actual ``(g, h)``, qforecast ``(g, h, Q)`` -> ``(g, Q)``."""
    tau = np.asarray(quantiles, np.float64)[None, None, :]
    diff = np.asarray(actual, np.float64)[:, :, None] - qforecast
    return np.mean(np.maximum(tau * diff, (tau - 1.0) * diff), axis=1)


def quantile_coverage(actual: np.ndarray, qforecast: np.ndarray) -> np.ndarray:
    """Empirical share of actuals <= each quantile forecast: ``(..., Q)`` -> ``(Q,)``."""
    a = np.asarray(actual, np.float64)[..., None]
    return np.mean(a <= qforecast, axis=tuple(range(a.ndim - 1)))


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Empirical share of actuals inside ``[lower, upper]``."""
    a = np.asarray(actual, np.float64)
    return float(np.mean((a >= lower) & (a <= upper)))


@dataclass
class Level:
    """One aggregation level: its keys, aggregation matrix, scales and weights."""

    name: str
    keys: pl.DataFrame
    agg: sp.csr_matrix
    scale: np.ndarray
    scale_abs: np.ndarray
    weight: np.ndarray

    def aggregate(self, panel: np.ndarray) -> np.ndarray:
        """Sum a bottom-level panel ``(n, h)`` into this level ``(G, h)``."""
        return np.asarray(self.agg @ np.asarray(panel, np.float64))


class WRMSSEEvaluator:
    """Scores forecasts of one fold over the M5 levels.

    ``history``: bottom panel of the training days ``(n, T)`` (ends at the fold origin);
    ``hierarchy``: one row per bottom series in panel order; ``dollar_sales``: each series'
    units x price over the last 28 training days (NaN prices count as 0).
    """

    def __init__(
        self,
        history: np.ndarray,
        hierarchy: pl.DataFrame,
        dollar_sales: np.ndarray,
        levels: Mapping[str, Sequence[str]] = M5_LEVELS,
    ) -> None:
        history = np.ascontiguousarray(history, dtype=np.float64)  # one copy for every level
        if history.shape[0] != hierarchy.height:
            raise ValueError("history rows must match hierarchy rows")
        self.levels: dict[str, Level] = {}
        for name, cols in levels.items():
            codes, keys = level_codes(hierarchy, cols)
            agg = aggregation_matrix(codes, keys.height)
            identity = keys.height == codes.shape[0] and bool(
                np.all(codes == np.arange(codes.shape[0]))
            )
            hist = history if identity else np.asarray(agg @ history)
            self.levels[name] = Level(
                name=name,
                keys=keys,
                agg=agg,
                scale=guarded_scale(hist),
                scale_abs=guarded_scale(hist, absolute=True),
                weight=dollar_weights(dollar_sales, codes, keys.height),
            )

    def level_rmsse(self, actual: np.ndarray, forecast: np.ndarray) -> dict[str, np.ndarray]:
        """RMSSE of every series of every level."""
        out = {}
        for name, lv in self.levels.items():
            out[name] = rmsse(lv.aggregate(actual), lv.aggregate(forecast), lv.scale)
        return out

    def score(self, actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
        """Weighted RMSSE per level plus ``"all"`` = WRMSSE (levels weighted equally)."""
        per = {
            name: float(np.sum(self.levels[name].weight * r))
            for name, r in self.level_rmsse(actual, forecast).items()
        }
        per["all"] = float(np.mean(list(per.values())))
        return per

    def spl(
        self,
        level: str,
        actual_bottom: np.ndarray,
        qforecast: np.ndarray,
        quantiles: Sequence[float],
    ) -> np.ndarray:
        """Scaled pinball loss ``(G, Q)`` of quantile forecasts ``(G, h, Q)`` made at ``level``."""
        lv = self.levels[level]
        return (
            pinball_loss(lv.aggregate(actual_bottom), qforecast, quantiles) / lv.scale_abs[:, None]
        )

    def wspl(
        self,
        actual_bottom: np.ndarray,
        qforecasts: Mapping[str, np.ndarray],
        quantiles: Sequence[float],
    ) -> float:
        """Weighted SPL averaged over the levels given in ``qforecasts`` and over quantiles."""
        return self.wspl_levels(actual_bottom, qforecasts, quantiles)["all"]

    def wspl_levels(
        self,
        actual_bottom: np.ndarray,
        qforecasts: Mapping[str, np.ndarray],
        quantiles: Sequence[float],
    ) -> dict[str, float]:
        """WSPL per level given in ``qforecasts`` (``{level: (G, h, Q)}`` at ``quantiles``) plus
        ``"all"`` = their mean (the M5 WSPL when all 12 levels and the nine M5 quantiles are
        given)."""
        per = {
            name: float(
                np.sum(
                    self.levels[name].weight
                    * self.spl(name, actual_bottom, q, quantiles).mean(axis=1)
                )
            )
            for name, q in qforecasts.items()
        }
        per["all"] = float(np.mean(list(per.values())))
        return per
