"""Walk-forward backtest of the model family: training rows per fold (no leakage), each part's
fold forecasts at several numbers of trees, and the matrices the scoring reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.backtest import Fold, Panel
from forecasting_assets.modeling.boosters import TARGET
from forecasting_assets.modeling.family import fit_family
from forecasting_assets.modeling.recent import CONTEXT_DAYS, sales_matrix
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE, ModelSpec

logger = logging.getLogger(__name__)

Encoder = Callable[[pl.DataFrame, int], pl.DataFrame]
"""``(features, cutoff_d) -> features`` with target encodings from days ``<= cutoff_d`` only."""


def train_mask(
    features: pl.DataFrame, start_d: int, end_d: int, max_rows: int = 0, seed: int = 42
) -> pl.Series:
    """Rows a model may learn from: ``start_d <= d <= end_d``, launched, target known.

    With ``max_rows > 0``, a uniform random sample of at most that many of them (seeded): at full
    M5 scale this bounds the training time and memory at a small cost in accuracy.
    """
    expr = (
        pl.col("d").is_between(start_d, end_d)
        & pl.col("is_launched")
        & pl.col(TARGET).is_not_null()
    )
    mask = features.select(expr.fill_null(False).alias("train")).to_series()
    n = int(mask.sum())
    if 0 < max_rows < n:
        keep = np.zeros(n, bool)
        keep[np.random.default_rng(seed).choice(n, max_rows, replace=False)] = True
        sampled = np.zeros(mask.len(), bool)
        sampled[mask.to_numpy()] = keep
        mask = pl.Series("train", sampled)
    return mask


def as_panel_matrix(
    rows: pl.DataFrame, values: np.ndarray, panel: Panel, fold_days: int
) -> np.ndarray:
    """Reshape per-row predictions of ``fold_days`` consecutive days to ``(n_series, days)`` in
    panel order (rows must be sorted by id then d and cover every series)."""
    n = panel.hierarchy.height
    if rows.height != n * fold_days:
        raise ValueError(f"expected {n * fold_days} forecast rows, got {rows.height}")
    ids = rows["id"].gather_every(fold_days).cast(pl.String)
    if not ids.equals(panel.hierarchy["id"].cast(pl.String), check_names=False):
        raise ValueError("forecast rows are not in panel series order")
    return values.reshape(n, fold_days)


@dataclass
class FoldOutput:
    """Backtest forecasts of one fold, ``(n_series, horizon)`` in panel order: each part's after
    each checkpoint's number of trees (``parts[part][trees]``)."""

    fold: Fold
    parts: dict[str, dict[int, np.ndarray]]
    train_rows: int
    seconds: float

    def blend(self, rounds: Mapping[str, int], recursive_weight: np.ndarray | float) -> np.ndarray:
        """The direct/recursive blend; ``recursive_weight`` a scalar or one per series."""
        w = np.asarray(recursive_weight, np.float64)
        w = w[:, None] if w.ndim == 1 else w
        if RECURSIVE not in self.parts:
            return self.parts[DIRECT][rounds[DIRECT]]
        if DIRECT not in self.parts:
            return self.parts[RECURSIVE][rounds[RECURSIVE]]
        d, r = self.parts[DIRECT][rounds[DIRECT]], self.parts[RECURSIVE][rounds[RECURSIVE]]
        return (1.0 - w) * d + w * r


def checkpoints(num_boost_round: int, n: int = 4) -> list[int]:
    """Numbers of trees the backtest scores: ``n`` evenly spaced up to ``num_boost_round``."""
    return sorted({max(1, round(num_boost_round * (i + 1) / n)) for i in range(n)})


def backtest_model(
    features: pl.DataFrame,
    panel: Panel,
    folds: Sequence[Fold],
    specs: Mapping[str, ModelSpec],
    params: Mapping[str, Any],
    num_boost_round: int,
    train_start_d: int,
    store_group: Mapping[str, str],
    encoder: Encoder | None = None,
    max_train_rows: int = 0,
    seed: int = 42,
) -> list[FoldOutput]:
    """Train the family on days ``train_start_d .. origin`` of each fold and forecast the fold
    with every part at every :func:`checkpoints` number of trees.

    ``features``: a complete grid sorted by id, d, with the recent features
    (:func:`~forecasting_assets.modeling.recent.with_recent_features`).
    Leakage guard: training rows end at the fold origin (asserted), target encodings are
    recomputed from days ``<= origin`` by ``encoder``, and the recursive part sees no sales after
    the origin (its fold-day recent features are recomputed from its own predictions).
    """
    out = []
    for fold in folds:
        t0 = time.perf_counter()
        frame = encoder(features, fold.origin) if encoder else features
        mask = train_mask(frame, train_start_d, fold.origin, max_train_rows, seed)
        n_train = int(mask.sum())
        if n_train == 0:
            raise ValueError(
                f"fold {fold.k}: no training rows in d_{train_start_d}..d_{fold.origin}"
            )
        if int(frame.get_column("d").filter(mask).max()) > fold.origin:  # pragma: no cover
            raise AssertionError("training rows after the fold origin")
        family = fit_family(frame, specs, params, dict.fromkeys(specs, num_boost_round), mask,
                            store_group)  # fmt: skip
        test = frame.filter(pl.col("d").is_between(fold.start, fold.end)).sort("id", "d")
        history = history_matrix(frame, fold.origin)
        parts: dict[str, dict[int, np.ndarray]] = {k: {} for k in specs}
        for trees in checkpoints(num_boost_round):
            for member in family.members.values():
                member.iterations = dict.fromkeys(specs, trees)
            for k, v in family.forecast_parts(test, history).items():
                parts[k][trees] = as_panel_matrix(test, v, panel, fold.horizon)
        out.append(FoldOutput(fold, parts, n_train, time.perf_counter() - t0))
        logger.info("fold %s: %s training rows, %.1fs", fold.k, n_train, out[-1].seconds)
    return out


def history_matrix(frame: pl.DataFrame, origin: int) -> np.ndarray:
    """Launched sales of the last :data:`CONTEXT_DAYS` days up to ``origin`` (series x days)."""
    days = frame.filter(pl.col("d").is_between(origin - CONTEXT_DAYS + 1, origin))
    return sales_matrix(days.sort("id", "d"))
