"""LightGBM boosters: parameters, training, prediction (one-step and recursive), importances.

A part of a model is a *bag*: one booster per seed (each on its own row sample), predicting their
mean; a bag of one is a plain booster."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.recent import (
    CONTEXT_DAYS,
    DAYS_AHEAD,
    RECENT_COLUMNS,
    grid_position,
    origin_features,
    recent_features,
)
from forecasting_assets.modeling.spec import RECURSIVE, ModelSpec

if TYPE_CHECKING:
    import lightgbm as lgb

logger = logging.getLogger(__name__)

TARGET = "sales"


DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.1,
    "learning_rate": 0.15,
    "num_leaves": 255,  # 63 before: 0.667 / 0.673 with seeds 42 / 43, 255: 0.660 / 0.665
    "min_data_in_leaf": 100,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.5,
    "bagging_freq": 1,
    "lambda_l2": 0.1,
    "max_bin": 63,
    "force_row_wise": True,  # skips LightGBM's layout test; row-wise was faster on M5 here
    "verbosity": -1,
}
"""LightGBM parameters (the dg.Config may override any of them)."""

DEFAULT_PART_PARAMS: dict[str, dict[str, Any]] = {RECURSIVE: {"tweedie_variance_power": 1.5}}
"""Parameters of one part over :data:`DEFAULT_PARAMS`. Chosen on the mean over the six folds of
the real M5 subset: the direct part scored best at Tweedie power 1.1 (of 1.0-1.5), the blend
with the recursive part at 1.5 (of 1.1/1.5/1.7)."""


def lgb_params(
    params: Mapping[str, Any] | None = None, *, seed: int = 42, num_threads: int = 2
) -> dict[str, Any]:
    """Default parameters updated with ``params``, plus seed and thread count."""
    out = {**DEFAULT_PARAMS, **(params or {})}
    out.update(seed=seed, num_threads=num_threads)
    return out


def _with_placeholders(frame: pl.DataFrame, spec: ModelSpec) -> pl.DataFrame:
    """``frame`` with null columns for the derived inputs (recent features, days ahead) that the
    spec reads and the frame lacks; their values are filled in the matrix."""
    derived = [c for c in (*RECENT_COLUMNS, DAYS_AHEAD)
               if c in spec.feature_columns and c not in frame.columns]  # fmt: skip
    return frame.with_columns(pl.lit(None, pl.Float32).alias(c) for c in derived)


def training_matrix(
    frame: pl.DataFrame, spec: ModelSpec, mask: pl.Series | None = None, seed: int = 0
) -> np.ndarray:
    """``spec``'s matrix of the rows where ``mask`` is true. For a part that reads the origin
    (:attr:`~forecasting_assets.modeling.spec.ModelSpec.reads_origin`), each row is seen from an
    origin 1..``spec.origin_horizon`` days before it (uniform, seeded): its days ahead and the
    recent features known then, from ``frame``'s own sales (a complete series x day grid)."""
    x = spec.to_matrix(_with_placeholders(frame, spec), mask)
    if not spec.reads_origin:
        return x
    series, day, sales = grid_position(frame)
    if mask is not None:
        keep = mask.to_numpy()
        series, day = series[keep], day[keep]
    ahead = np.random.default_rng(seed).integers(1, spec.origin_horizon + 1, series.size)
    x[:, [spec.feature_columns.index(c) for c in RECENT_COLUMNS]] = origin_features(
        sales, series, day, ahead
    )
    x[:, spec.feature_columns.index(DAYS_AHEAD)] = ahead
    return x


def fit_booster(
    frame: pl.DataFrame,
    spec: ModelSpec,
    params: Mapping[str, Any],
    num_boost_round: int,
    mask: pl.Series | None = None,
) -> lgb.Booster:
    """Train one booster on the rows of ``frame`` where ``mask`` is true (target ``sales``)."""
    import lightgbm as lgb  # deferred: importing lightgbm is slow and not needed by the wiring

    x = training_matrix(frame, spec, mask, int(params.get("seed", 0)))
    target = frame.get_column(TARGET) if mask is None else frame.get_column(TARGET).filter(mask)
    y = target.cast(pl.Float32).to_numpy()
    cat_idx = [spec.feature_columns.index(c) for c in spec.categorical_columns]
    ds = lgb.Dataset(
        x, label=y, feature_name=spec.feature_columns, categorical_feature=cat_idx,
        free_raw_data=True, params={**params, "verbosity": -1},
    )  # fmt: skip
    ds.construct()  # bin now, then drop the float matrix before boosting
    del x
    t0 = time.perf_counter()
    booster = lgb.train(dict(params), ds, num_boost_round=num_boost_round)
    logger.info(
        "trained %s rounds on %s rows in %.1fs", num_boost_round, y.size, time.perf_counter() - t0
    )
    return booster


def bag_of(boosters: lgb.Booster | Sequence[lgb.Booster]) -> list[lgb.Booster]:
    """A booster or a bag of them, as a bag."""
    return list(boosters) if isinstance(boosters, Sequence) else [boosters]


def predict_matrix(
    boosters: lgb.Booster | Sequence[lgb.Booster], x: np.ndarray, num_iteration: int | None = None
) -> np.ndarray:
    """Point forecasts (units/day) of a model matrix: the mean of the bag's boosters, each with
    its first ``num_iteration`` trees (all if None), clipped at 0."""
    bag = bag_of(boosters)
    pred = np.zeros(x.shape[0])
    for b in bag:
        threads = int(b.params.get("num_threads", 2))
        pred += np.asarray(b.predict(x, num_iteration=num_iteration, num_threads=threads))
    return np.clip(pred / len(bag), 0.0, None)


def predict_booster(
    boosters: lgb.Booster | Sequence[lgb.Booster],
    frame: pl.DataFrame,
    spec: ModelSpec,
    num_iteration: int | None = None,
) -> np.ndarray:
    """One-step point forecasts (units/day) of the rows of ``frame``, clipped at 0: a part that
    reads the origin sees each row 1 day ahead unless ``frame`` has ``days_ahead``."""
    if frame.height == 0:
        return np.zeros(0)
    if spec.reads_origin and DAYS_AHEAD not in frame.columns:
        frame = frame.with_columns(pl.lit(1.0, pl.Float32).alias(DAYS_AHEAD))
    return predict_matrix(boosters, spec.to_matrix(frame), num_iteration)


def origin_predict(
    boosters: lgb.Booster | Sequence[lgb.Booster],
    spec: ModelSpec,
    rows: pl.DataFrame,
    history: np.ndarray,
    num_iteration: int | None = None,
) -> np.ndarray:
    """Horizon forecast of a part that reads the origin: every day of a series reads the recent
    features of the day after the last ``history`` day, and its own days ahead (1, 2, ...)."""
    n, days = _grid_shape(rows, history)
    x = spec.to_matrix(_with_placeholders(rows, spec))
    at_origin = recent_features(history[:, -CONTEXT_DAYS:], min(CONTEXT_DAYS, history.shape[1]))
    x[:, [spec.feature_columns.index(c) for c in RECENT_COLUMNS]] = np.repeat(
        at_origin[:, 0, :], days, axis=0
    )
    x[:, spec.feature_columns.index(DAYS_AHEAD)] = np.tile(np.arange(1, days + 1), n)
    return predict_matrix(boosters, x, num_iteration)


def _grid_shape(rows: pl.DataFrame, history: np.ndarray) -> tuple[int, int]:
    """Series and days of horizon ``rows`` (every series x whole days) for ``history``."""
    n = history.shape[0]
    if n == 0 or rows.height % n:
        raise ValueError(f"{rows.height} rows do not cover {n} series x whole days")
    return n, rows.height // n


def recursive_predict(
    boosters: lgb.Booster | Sequence[lgb.Booster],
    spec: ModelSpec,
    rows: pl.DataFrame,
    history: np.ndarray,
    num_iteration: int | None = None,
) -> np.ndarray:
    """Day-by-day forecast: each day's recent features read the actuals and the predictions of
    the days before (the bag's mean). Series not launched at the origin keep NaN history
    (features NaN).

    Recent-feature columns in ``rows`` are ignored (every row's are recomputed), so they may be
    absent.
    """
    n, days = _grid_shape(rows, history)
    past = history[:, -CONTEXT_DAYS:]
    launched = np.isfinite(past[:, -1])
    y = np.concatenate([past, np.full((n, days), np.nan)], axis=1)
    x = spec.to_matrix(_with_placeholders(rows, spec))
    recent_idx = [spec.feature_columns.index(c) for c in RECENT_COLUMNS]
    pred = np.zeros((n, days))
    for step in range(days):
        col = past.shape[1] + step
        xd = x[np.arange(n) * days + step]
        xd[:, recent_idx] = recent_features(y, col)[:, 0, :]
        pred[:, step] = predict_matrix(boosters, xd, num_iteration)
        y[:, col] = np.where(launched, pred[:, step], np.nan)
    return pred.reshape(-1)


def importance_frame(boosters: lgb.Booster | Sequence[lgb.Booster]) -> pl.DataFrame:
    """feature, gain, split of a booster (a bag's mean), sorted by gain."""
    bag = bag_of(boosters)
    return pl.DataFrame(
        {
            "feature": bag[0].feature_name(),
            "gain": np.mean([b.feature_importance("gain") for b in bag], axis=0, dtype=np.float64),
            "split": np.rint(np.mean([b.feature_importance("split") for b in bag], axis=0)).astype(
                np.int64
            ),
        }
    ).sort("gain", descending=True)
