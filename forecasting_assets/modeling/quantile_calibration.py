"""The model's quantile calibration: scaled conformal quantiles per series and per M5 level.

:class:`QuantileCalibration`: for each of the 12 M5 levels, the backtest residuals
``actual - forecast`` of every series are divided by the series' own scale, and their empirical
quantiles are stored per bin of the point forecast (equal-count bins). A series' scale is the root
of its mean squared backtest residual relative to what its bins expect, shrunk to the mean of its
Syntetos-Boylan demand class (smooth, erratic, intermittent, lumpy), so that the spread follows the
series' own level and intermittency. A new forecast gets
``max(forecast + scale * residual_quantile(bin), 0)``; upper levels are calibrated on their own
aggregated backtest forecasts (quantiles of sums are not sums of quantiles). The quantiles are
continuous (not integers), so that ``[q100, q900]`` covers 80 % of the days. It carries the
id-free :class:`~forecasting_assets.modeling.quantiles.ConformalQuantiles` of the bottom level as
its fallback for one-off points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.contracts import BOTTOM_LEVEL, M5_LEVELS
from forecasting_assets.inventory.demand import DEMAND_CLASSES, classify_demand, demand_statistics
from forecasting_assets.modeling.metrics import aggregation_matrix, level_codes
from forecasting_assets.modeling.quantiles import (
    LOWER_Q,
    QUANTILES,
    UPPER_Q,
    ConformalQuantiles,
)

N_BINS = 20
MIN_BIN_PAIRS = 1000
"""Fewer backtest pairs per bin than this: fewer bins (a single series gets one bin)."""
INTERVAL_TARGET = 0.8
"""Coverage the ``[q100, q900]`` interval is calibrated to, out of fold."""
PRIOR_PAIRS = 112.0
"""Shrinkage of a series' scale to its demand class mean, in backtest pairs (4 folds of 28 days)."""


def series_classes(actual: np.ndarray) -> np.ndarray:
    """Syntetos-Boylan demand class index (into ``DEMAND_CLASSES``) of each row's actuals."""
    stats = demand_statistics(np.asarray(actual, np.float64))
    names = classify_demand(stats["adi"], stats["cv2"])
    return np.array([DEMAND_CLASSES.index(c) for c in names], dtype=np.int64)


def _by_bin(bins: np.ndarray, n_bins: int, *values: np.ndarray) -> list[list[np.ndarray]]:
    """Each of ``values`` split into its ``n_bins`` bins (bin 0 first; in a small integer type
    the stable sort of the bins is a radix sort)."""
    order = np.argsort(bins.astype(np.uint8 if n_bins <= 256 else np.int64), kind="stable")
    splits = np.searchsorted(bins[order], np.arange(1, n_bins))
    return [np.split(v[order], splits) for v in values]


def _bin_quantiles(
    bins: np.ndarray, z: np.ndarray, n_bins: int, levels: Sequence[float]
) -> np.ndarray:
    """``(n_bins, L)`` empirical quantiles of ``z`` per bin (empty bins: the pooled ones)."""
    pooled = np.quantile(z, levels) if z.size else np.zeros(len(levels))
    (groups,) = _by_bin(bins, n_bins, z)
    return np.stack([np.quantile(c, levels) if c.size else pooled for c in groups])


def _table(
    bins: np.ndarray, z: np.ndarray, n_bins: int, quantiles: Sequence[float], shift: float
) -> np.ndarray:
    """``(n_bins, Q)`` table; the interval bounds (q100/q900) are taken at levels widened by
    ``shift``; levels <= LOWER_Q are capped at 0 and >= UPPER_Q floored at 0, monotone."""
    qs = np.asarray(quantiles, np.float64)
    levels = np.where(qs == LOWER_Q, LOWER_Q - shift, np.where(qs == UPPER_Q, UPPER_Q + shift, qs))
    t = _bin_quantiles(bins, z, n_bins, np.clip(levels, 0.0, 1.0))
    t = np.where(qs <= LOWER_Q, np.minimum(t, 0.0), t)
    t = np.where(qs >= UPPER_Q, np.maximum(t, 0.0), t)
    return np.maximum.accumulate(t, axis=1)


@dataclass
class _Scaled:
    """Residuals of one level's backtest pairs divided by their series' scale."""

    edges: np.ndarray
    bins: np.ndarray  # bin of every valid pair
    z: np.ndarray  # scaled residual of every valid pair
    scale: np.ndarray  # (n,)


def _scaled_residuals(f: np.ndarray, a: np.ndarray, ok: np.ndarray, n_bins: int,
                      prior_pairs: float) -> _Scaled:  # fmt: skip
    """Bins of the point forecast, series scales shrunk to their demand class, scaled residuals."""
    n_bins = int(max(1, min(n_bins, ok.sum() // MIN_BIN_PAIRS)))
    edges = np.unique(np.quantile(f[ok], np.linspace(0, 1, n_bins + 1)[1:-1]))
    bins = np.searchsorted(edges, f, side="right")
    e = np.where(ok, a - f, 0.0)
    # expected squared residual of each pair from its bin, then each series' ratio to it
    n_b = edges.size + 1
    v = np.bincount(bins[ok], (e * e)[ok], n_b) / np.maximum(np.bincount(bins[ok], None, n_b), 1)
    expected = np.where(ok, v[bins], 0.0).sum(axis=1)
    observed = (e * e).sum(axis=1)
    cls_idx = series_classes(np.where(ok, a, np.nan))
    k = len(DEMAND_CLASSES)
    class_ratio = np.bincount(cls_idx, observed, k) / np.maximum(
        np.bincount(cls_idx, expected, k), 1e-12
    )
    prior = prior_pairs * expected / np.maximum(ok.sum(axis=1), 1)  # prior_pairs pairs' worth
    ratio = np.where(
        expected > 0, (observed + prior * class_ratio[cls_idx]) / (expected + prior), 1.0
    )
    scale = np.sqrt(np.clip(ratio, 1e-4, None))
    return _Scaled(edges, bins[ok], (e / scale[:, None])[ok], scale)


SHIFT_GRID = np.linspace(-0.05, 0.05, 21)
"""Candidate widenings of the 80 % interval's nominal levels (q100 - s, q900 + s)."""


def _inside_counts(
    bins: np.ndarray, z: np.ndarray, positive: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Per candidate ``k``: how many pairs fall in ``[max(f + s lo[b, k], 0), max(f + s hi[b, k],
    0)]``, counted from each pair's bin ``b``, scaled residual ``z = (a - f) / s`` (``s > 0``) and
    whether its actual is positive. With ``lo <= 0 <= hi`` and ``a >= 0``, a pair is outside
    exactly when ``z < lo`` or, with ``a > 0``, ``z > hi``: two disjoint counts per bin, read off
    the sorted residuals."""
    inside = np.zeros(lo.shape[1])
    for j, (zb, pb) in enumerate(zip(*_by_bin(bins, lo.shape[0], z, positive), strict=True)):
        below = np.searchsorted(np.sort(zb), lo[j], side="left")
        zp = np.sort(zb[pb])
        above = zp.size - np.searchsorted(zp, hi[j], side="right")
        inside += zb.size - below - above
    return inside


def _interval_shift(
    folds: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_bins: int,
    prior_pairs: float,
    target: float,
) -> float:
    """Widening of the interval's nominal levels whose *out-of-fold* coverage (each fold
    predicted from a calibration on the others) is closest to ``target``: this corrects the
    in-sample optimism of the series scales and bins."""
    inside = np.zeros(SHIFT_GRID.size)
    total = 0
    for j, (fj, aj, okj) in enumerate(folds):
        rest = [x for i, x in enumerate(folds) if i != j]
        f, a, ok = (np.concatenate([r[i] for r in rest], axis=1) for i in range(3))
        sc = _scaled_residuals(f, a, ok, n_bins, prior_pairs)
        n_b = sc.edges.size + 1
        lo = np.minimum(_bin_quantiles(sc.bins, sc.z, n_b, LOWER_Q - SHIFT_GRID), 0.0)
        hi = np.maximum(_bin_quantiles(sc.bins, sc.z, n_b, UPPER_Q + SHIFT_GRID), 0.0)
        b = np.searchsorted(sc.edges, fj, side="right")[okj]
        z = ((aj - fj) / sc.scale[:, None])[okj]
        inside += _inside_counts(b, z, aj[okj] > 0, lo, hi)
        total += int(okj.sum())
    cover = inside / max(total, 1)
    best = np.argmin(np.abs(cover - target) + 1e-9 * np.abs(SHIFT_GRID))
    return float(SHIFT_GRID[best])


@dataclass
class SeriesQuantiles:
    """Scaled, binned conformal quantiles of the series of one level (see the module docstring)."""

    quantiles: tuple[float, ...]
    edges: list[float]  # inner bin edges on the point forecast
    table: list[list[float]]  # (bins, Q) quantiles of residual / series scale
    scale: dict[str, float]  # series id -> scale (1.0 for a series not seen in the backtest)
    interval_shift: float = 0.0  # q100/q900 taken at levels 0.10 - shift / 0.90 + shift

    @classmethod
    def fit(
        cls,
        forecasts: Sequence[np.ndarray],
        actuals: Sequence[np.ndarray],
        ids: Sequence[str],
        quantiles: Sequence[float] = QUANTILES,
        n_bins: int = N_BINS,
        prior_pairs: float = PRIOR_PAIRS,
        interval: float | None = INTERVAL_TARGET,
    ) -> SeriesQuantiles:
        """Fit from backtest folds: ``forecasts[k]``, ``actuals[k]`` are ``(n, h_k)`` with rows in
        ``ids`` order (one row per series). With ``interval`` and >= 3 folds, the bounds
        ``[q100, q900]`` are widened or narrowed so that their out-of-fold coverage (leave one
        fold out) is ``interval``."""
        f = np.concatenate([np.asarray(x, np.float64) for x in forecasts], axis=1)
        a = np.concatenate([np.asarray(x, np.float64) for x in actuals], axis=1)
        if f.shape != a.shape or f.shape[0] != len(ids) or f.size == 0:
            raise ValueError(
                f"backtest forecasts {f.shape}, actuals {a.shape} and {len(ids)} ids do not match"
            )
        ok = np.isfinite(f) & np.isfinite(a)
        f, a = np.where(ok, f, 0.0), np.where(ok, a, 0.0)
        sc = _scaled_residuals(f, a, ok, n_bins, prior_pairs)
        shift = 0.0
        if interval is not None and len(forecasts) >= 3:
            cuts = np.cumsum([np.shape(x)[1] for x in forecasts])[:-1]
            folds = list(zip(*(np.split(m, cuts, axis=1) for m in (f, a, ok)), strict=True))
            shift = _interval_shift(folds, n_bins, prior_pairs, interval)
        table = _table(sc.bins, sc.z, sc.edges.size + 1, quantiles, shift)
        edges, scale = sc.edges, sc.scale
        return cls(
            quantiles=tuple(float(q) for q in quantiles),
            edges=edges.tolist(),
            table=table.tolist(),
            scale=dict(zip((str(i) for i in ids), scale.tolist(), strict=True)),
            interval_shift=shift,
        )

    def predict(self, point: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """Quantiles ``(*point.shape, Q)`` of point forecasts whose first axis follows ``ids``."""
        f = np.clip(np.asarray(point, np.float64), 0.0, None)
        if f.shape[0] != len(ids):
            raise ValueError(f"{f.shape[0]} forecasts but {len(ids)} series ids")
        s = np.array([self.scale.get(str(i), 1.0) for i in ids], np.float64)
        s = s.reshape(-1, *([1] * (f.ndim - 1)))
        bins = np.searchsorted(np.asarray(self.edges), f, side="right")
        q = f[..., None] + (s * np.ones_like(f))[..., None] * np.asarray(self.table)[bins]
        return np.maximum(q, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"edges": self.edges, "table": self.table, "scale": self.scale,
                "interval_shift": self.interval_shift}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], quantiles: Sequence[float]) -> SeriesQuantiles:
        """Inverse of :meth:`to_dict`."""
        return cls(
            quantiles=tuple(float(q) for q in quantiles),
            edges=[float(x) for x in data["edges"]],
            table=[[float(x) for x in r] for r in data["table"]],
            scale={str(k): float(v) for k, v in dict(data["scale"]).items()},
            interval_shift=float(data.get("interval_shift", 0.0)),
        )


def level_series(
    hierarchy: pl.DataFrame, levels: Mapping[str, Sequence[str]] = M5_LEVELS
) -> dict[str, tuple[Any, list[str]]]:
    """Per level: the ``(G, n)`` aggregation matrix of the bottom rows and the G series ids.

    Ids are the level's keys joined by ``_`` (``"Total"``, ``"CA"``, ``"CA_1_FOODS"``...);
    the bottom level uses the ``id`` column.
    """
    out: dict[str, tuple[Any, list[str]]] = {}
    for name, cols in levels.items():
        codes, keys = level_codes(hierarchy, cols)
        ids = (
            hierarchy["id"].cast(pl.String).to_list()
            if name == BOTTOM_LEVEL
            else keys["level_id"].to_list()
        )
        out[name] = (aggregation_matrix(codes, keys.height), ids)
    return out


@dataclass
class QuantileCalibration:
    """The model's quantile calibration: one :class:`SeriesQuantiles` per M5 level, plus the
    id-free :class:`ConformalQuantiles` of the bottom level (used for one-off points)."""

    quantiles: tuple[float, ...]
    levels: dict[str, SeriesQuantiles]
    fallback: ConformalQuantiles

    @classmethod
    def fit(
        cls,
        forecasts: Sequence[np.ndarray],
        actuals: Sequence[np.ndarray],
        hierarchy: pl.DataFrame,
        quantiles: Sequence[float] = QUANTILES,
        levels: Mapping[str, Sequence[str]] = M5_LEVELS,
        n_bins: int = N_BINS,
        prior_pairs: float = PRIOR_PAIRS,
    ) -> QuantileCalibration:
        """Fit from the backtest folds' bottom-level point forecasts and actuals.

        ``forecasts[k]``, ``actuals[k]``: ``(n_series, horizon)`` of fold ``k``, rows in
        ``hierarchy`` order (``id, item_id, dept_id, cat_id, store_id, state_id``).
        """
        if len(forecasts) != len(actuals) or not forecasts:
            raise ValueError("need the same number (>= 1) of fold forecasts and fold actuals")
        fitted: dict[str, SeriesQuantiles] = {}
        for name, (agg, ids) in level_series(hierarchy, levels).items():
            lf = [np.asarray(agg @ np.asarray(f, np.float64)) for f in forecasts]
            la = [np.asarray(agg @ np.asarray(a, np.float64)) for a in actuals]
            fitted[name] = SeriesQuantiles.fit(lf, la, ids, quantiles, n_bins, prior_pairs)
        fallback = ConformalQuantiles.fit(
            np.concatenate([np.ravel(f) for f in forecasts]),
            np.concatenate([np.ravel(a) for a in actuals]),
            quantiles,
            n_bins,
        )
        return cls(tuple(float(q) for q in quantiles), fitted, fallback)

    def predict(self, point: np.ndarray, rows: pl.DataFrame | Sequence[str]) -> np.ndarray:
        """Bottom-level quantiles ``(*point.shape, Q)``; ``rows`` gives the series ``id`` along
        the first axis of ``point`` (a frame with an ``id`` column, or the ids): one per forecast
        row (the export) or one per row of a ``(n, h)`` matrix."""
        ids = rows["id"].cast(pl.String).to_list() if isinstance(rows, pl.DataFrame) else rows
        return self.levels[BOTTOM_LEVEL].predict(np.asarray(point), list(ids))

    def predict_level(self, level: str, point: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """Quantiles ``(*point.shape, Q)`` of ``level``'s aggregated point forecasts (first axis
        follows ``ids``, the level's series ids as in :func:`level_series`)."""
        return self.levels[level].predict(point, ids)

    def level_forecasts(self, point: np.ndarray, hierarchy: pl.DataFrame) -> dict[str, np.ndarray]:
        """``{level: (G, h, Q)}`` quantiles of every level from a bottom ``(n, h)`` point forecast
        (rows in ``hierarchy`` order; point forecasts are summed up the hierarchy)."""
        out = {}
        levels = {name: M5_LEVELS[name] for name in self.levels}
        for name, (agg, ids) in level_series(hierarchy, levels).items():
            out[name] = self.predict_level(name, np.asarray(agg @ np.asarray(point)), ids)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (quantile_calibration.json). ``quantiles``/``edges``/``residuals`` are the
        id-free fallback's, in :class:`ConformalQuantiles`' layout (read by the API)."""
        fb = self.fallback.to_dict()
        return {
            **fb,
            "method": "scaled_conformal_by_level",
            "levels": {name: sq.to_dict() for name, sq in self.levels.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileCalibration:
        """Inverse of :meth:`to_dict`."""
        qs = tuple(float(q) for q in data["quantiles"])
        return cls(
            quantiles=qs,
            levels={k: SeriesQuantiles.from_dict(v, qs) for k, v in dict(data["levels"]).items()},
            fallback=ConformalQuantiles.from_dict(data),
        )


def calibration_from_dict(data: Mapping[str, Any]) -> QuantileCalibration | ConformalQuantiles:
    """The calibration stored with a model, whichever method made it."""
    if data.get("method") == "scaled_conformal_by_level":
        return QuantileCalibration.from_dict(data)
    return ConformalQuantiles.from_dict(data)
