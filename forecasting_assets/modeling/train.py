"""Walk-forward backtest of the model family: training rows per fold (no leakage), each part's
fold forecasts at several numbers of trees, and the matrices the scoring reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

from forecasting_assets.modeling.backtest import Fold, Panel
from forecasting_assets.modeling.boosters import TARGET
from forecasting_assets.modeling.family import DemandModel, blend, fit_model
from forecasting_assets.modeling.recent import CONTEXT_DAYS, sales_matrix
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE, ModelSpec

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    """``(features, cutoff_d[, source]) -> features`` with target encodings from days
    ``<= cutoff_d`` only, of ``source`` when given (else of ``features``)."""

    def __call__(
        self, frame: pl.DataFrame, cutoff_d: int, source: pl.LazyFrame | None = None
    ) -> pl.DataFrame: ...


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
        return blend_parts(self.parts, rounds, recursive_weight)


def blend_parts(
    parts: Mapping[str, Mapping[int, np.ndarray]],
    rounds: Mapping[str, int],
    recursive_weight: np.ndarray | float,
) -> np.ndarray:
    """``(series, days)`` :func:`~forecasting_assets.modeling.family.blend` of each part's
    forecast after ``rounds[part]`` trees; ``recursive_weight`` a scalar or one per series."""
    if RECURSIVE not in parts:
        return parts[DIRECT][rounds[DIRECT]]
    if DIRECT not in parts:
        return parts[RECURSIVE][rounds[RECURSIVE]]
    return blend(
        parts[DIRECT][rounds[DIRECT]], parts[RECURSIVE][rounds[RECURSIVE]], recursive_weight
    )


def training_cutoffs(folds: Sequence[Fold], reuse_days: int = 0) -> dict[int, int]:
    """Fold k -> the last training day of the model that forecasts it: the fold's own origin, or,
    when that is at most ``reuse_days`` after the origin of the last model trained (oldest fold
    first), that model's origin. A reused model is staler than the fold's, never leaking."""
    out: dict[int, int] = {}
    last: int | None = None
    for f in sorted(folds, key=lambda f: f.origin):
        if last is None or f.origin - last > reuse_days:
            last = f.origin
        out[f.k] = last
    return out


def checkpoints(num_boost_round: int, n: int = 4) -> list[int]:
    """Numbers of trees the backtest scores: ``n`` evenly spaced up to ``num_boost_round``."""
    return sorted({max(1, round(num_boost_round * (i + 1) / n)) for i in range(n)})


@dataclass
class GroupTraining:
    """One group's backtest and final model (what a store partition trains): each part's fold
    forecasts of the series it serves at every checkpoint, and the member trained on all history
    with every tree (the number used is chosen later, on the mean over the folds)."""

    group: str
    ids: dict[str, list[str]]
    """part -> the series the group serves with that part, in the order of its forecasts' rows."""
    fold_parts: dict[int, dict[str, dict[int, np.ndarray]]]
    """fold k -> part -> trees -> ``(len(ids[part]), horizon)`` forecasts."""
    member: DemandModel
    horizon_parts: dict[str, dict[int, np.ndarray]]
    """The final member's forecast of the days after ``last_day``: part -> trees -> forecasts."""
    example: pl.DataFrame
    """A few input rows of the last history day (the pyfunc's input example)."""
    train_rows: dict[int, int]
    """fold k -> training rows (key 0: the final model)."""
    seconds: float
    plan: str = ""
    """Fingerprint of the training plan it belongs to."""


def train_group(
    frame: pl.DataFrame,
    group: str,
    serves: Mapping[str, Sequence[str]],
    folds: Sequence[Fold],
    specs: Mapping[str, ModelSpec],
    params: Mapping[str, Any],
    rounds: Mapping[str, int],
    train_start_d: int,
    last_day: int,
    encoder: Encoder | None = None,
    max_train_rows: Mapping[str, int] | None = None,
    seed: int = 42,
    reuse_days: int = 0,
    part_params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int = 1,
) -> GroupTraining:
    """Train a group's member (the parts in ``serves``, part -> stores) on days
    ``train_start_d .. origin`` of each fold and forecast the fold's days of each part's stores
    with that part at every :func:`checkpoints` number of its trees (``rounds[part]`` at most);
    then train the member on all history (``.. last_day``).
    A fold within ``reuse_days`` of an earlier trained origin is forecast by that model
    (:func:`training_cutoffs`), from the sales known at its own origin. ``part_params`` update
    ``params`` part by part. Each part is a bag of ``seeds`` boosters, the i-th trained on the row
    sample (of at most ``max_train_rows[part]`` rows; absent or 0: all) and with the LightGBM
    seed of ``seed + i``.

    ``frame``: the group's rows of the feature table (every store for the global group), a
    complete grid sorted by id, d, with the recent features
    (:func:`~forecasting_assets.modeling.recent.with_recent_features`).
    Leakage guard: training rows end at the fold origin (asserted), target encodings are
    recomputed from days ``<= origin`` by ``encoder``, and the recursive part sees no sales after
    the origin (its fold-day recent features are recomputed from its own predictions).
    """
    t0 = time.perf_counter()
    specs = {k: specs[k] for k in serves}
    rounds = {k: rounds[k] for k in specs}
    stops = {k: checkpoints(n) for k, n in rounds.items()}
    fold_parts: dict[int, dict[str, dict[int, np.ndarray]]] = {}
    train_rows: dict[int, int] = {}

    def fit(cutoff: int) -> tuple[DemandModel, pl.DataFrame]:
        """The member trained on days up to ``cutoff``, and the frame encoded at ``cutoff``."""
        encoded = encoder(frame, cutoff) if encoder else frame
        sizes = {k: (max_train_rows or {}).get(k, 0) for k in specs}
        samples = {n: [train_mask(encoded, train_start_d, cutoff, n, seed + i)
                       for i in range(seeds)] for n in set(sizes.values())}  # fmt: skip
        train_rows[cutoff] = max(int(bag[0].sum()) for bag in samples.values())
        if train_rows[cutoff] == 0:
            raise ValueError(f"group {group}: no training rows in d_{train_start_d}..d_{cutoff}")
        days = encoded.get_column("d")
        if any(int(days.filter(m).max()) > cutoff for bag in samples.values() for m in bag):
            raise AssertionError("training rows after the fold origin")  # pragma: no cover
        masks = {k: samples[n] for k, n in sizes.items()}
        return fit_model(encoded, specs, params, rounds, masks, part_params), encoded

    def forecast(
        member: DemandModel, encoded: pl.DataFrame, origin: int, first: int, last: int
    ) -> tuple[dict[str, list[str]], dict[str, dict[int, np.ndarray]]]:
        """Each part's served series and its forecasts of their days ``first..last`` from the
        sales known at ``origin``."""
        series, parts = {}, {}
        days = last - first + 1
        selected: dict[tuple[str, ...], tuple[pl.DataFrame, np.ndarray]] = {}
        for k, stores in serves.items():
            if tuple(stores) not in selected:  # parts serving the same stores share the rows
                mine = encoded.filter(pl.col("store_id").cast(pl.String).is_in(list(stores)))
                selected[tuple(stores)] = (
                    mine.filter(pl.col("d").is_between(first, last)).sort("id", "d"),
                    history_matrix(mine, origin),
                )
            test, history = selected[tuple(stores)]
            series[k] = test.get_column("id").cast(pl.String).gather_every(days).to_list()
            parts[k] = {}
            for t in stops[k]:
                member.iterations = {k: t}
                values = member.forecast_parts(test, history, [k])[k]
                parts[k][t] = values.reshape(len(series[k]), days)
        member.iterations = {}
        return series, parts

    cutoffs = training_cutoffs(folds, reuse_days)
    latest: tuple[int, DemandModel, pl.DataFrame] | None = None
    for fold in sorted(folds, key=lambda f: f.origin):
        if latest is None or latest[0] != cutoffs[fold.k]:
            latest = None  # the previous model's encoded frame goes before the next is built
            latest = (cutoffs[fold.k], *fit(cutoffs[fold.k]))
        _, fold_parts[fold.k] = forecast(latest[1], latest[2], fold.origin, fold.start, fold.end)
        logger.info("group %s fold %s forecast (model trained to d_%s)", group, fold.k, latest[0])
    del latest
    horizon = folds[0].horizon
    member, encoded = fit(last_day)
    series, horizon_parts = forecast(member, encoded, last_day, last_day + 1, last_day + horizon)
    served = pl.col("store_id").cast(pl.String).is_in([s for v in serves.values() for s in v])
    example = encoded.filter(served & (pl.col("d") == last_day)).head(5)
    del encoded
    train_rows = {0: train_rows[last_day], **{f.k: train_rows[cutoffs[f.k]] for f in folds}}
    return GroupTraining(group, series, fold_parts, member, horizon_parts, example, train_rows,
                         time.perf_counter() - t0)  # fmt: skip


def in_panel_order(
    trainings: Sequence[GroupTraining],
    panel: Panel,
    parts_of: Callable[[GroupTraining], Mapping[str, Mapping[int, np.ndarray]]],
) -> dict[str, dict[int, np.ndarray]]:
    """Every group's forecasts (``parts_of(group)``: part -> trees -> ``(series, days)``) placed
    in panel series order, part by part; each part must cover every series exactly once."""
    row_of = {s: i for i, s in enumerate(panel.hierarchy["id"].cast(pl.String).to_list())}
    n = len(row_of)
    out: dict[str, dict[int, np.ndarray]] = {}
    covered: dict[str, np.ndarray] = {}
    for g in trainings:
        for k, by_t in parts_of(g).items():
            rows = np.array([row_of[s] for s in g.ids[k]], dtype=np.int64)
            seen = covered.setdefault(k, np.zeros(n, np.int64))
            seen[rows] += 1
            for t, values in by_t.items():
                out.setdefault(k, {}).setdefault(t, np.full((n, values.shape[1]), np.nan))
                out[k][t][rows] = values
    for k, seen in covered.items():
        if (seen != 1).any():
            raise ValueError(f"part {k}: {int((seen == 0).sum())} series are served by no model "
                             f"group, {int((seen > 1).sum())} by several")  # fmt: skip
    return out


def assemble_folds(
    trainings: Sequence[GroupTraining], panel: Panel, folds: Sequence[Fold]
) -> list[FoldOutput]:
    """Every group's fold forecasts placed in panel series order (each series once per part)."""
    return [
        FoldOutput(fold, in_panel_order(trainings, panel, lambda g, k=fold.k: g.fold_parts[k]),
                   sum(g.train_rows[fold.k] for g in trainings),
                   sum(g.seconds for g in trainings) / len(folds))
        for fold in folds
    ]  # fmt: skip


def history_matrix(frame: pl.DataFrame | pl.LazyFrame, origin: int) -> np.ndarray:
    """Launched sales of the last :data:`CONTEXT_DAYS` days up to ``origin`` (series x days); a
    lazy ``frame`` is read only for those days and the columns they need."""
    days = frame.lazy().filter(pl.col("d").is_between(origin - CONTEXT_DAYS + 1, origin))
    return sales_matrix(days.select("id", "d", "sales", "is_launched").sort("id", "d").collect())
