"""LightGBM demand model (28-day horizon) and its walk-forward backtest.

The model averages two LightGBM boosters, as the M5 winners did:

* *direct*: every input is known at the forecast origin (sales lags >= 28, rolling windows ending
  at lag 28, calendar, prices, target encodings recomputed per fold from days ``<= origin``), so
  one prediction per day, nothing fed back;
* *recursive*: the same inputs without the lags plus recent sales (means ending yesterday); it
  forecasts day by day, feeding its own predictions back as sales.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.backtest import Fold, Panel
from forecasting_assets.modeling.recent import (
    CONTEXT_DAYS,
    RECENT_COLUMNS,
    recent_features,
    sales_matrix,
)

if TYPE_CHECKING:
    import lightgbm as lgb

logger = logging.getLogger(__name__)

TARGET = "sales"

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.1,
    "learning_rate": 0.15,
    "num_leaves": 63,
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

Encoder = Callable[[pl.DataFrame, int], pl.DataFrame]
"""``(features, cutoff_d) -> features`` with target encodings from days ``<= cutoff_d`` only."""


@dataclass
class ModelSpec:
    """How a features frame becomes the model's float32 matrix."""

    feature_columns: list[str]
    categorical_columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)  # string columns -> levels

    @classmethod
    def from_schema(
        cls,
        schema: Mapping[str, pl.DataType],
        feature_columns: Sequence[str],
        categorical_columns: Sequence[str],
    ) -> ModelSpec:
        """Spec of the given columns; Enum columns record their category list (code = index)."""
        missing = [c for c in feature_columns if c not in schema]
        if missing:
            raise KeyError(f"feature columns missing from the features table: {missing}")
        cats: dict[str, list[str]] = {}
        for c in feature_columns:
            dtype = schema[c]
            if isinstance(dtype, pl.Enum):
                cats[c] = list(dtype.categories)
            elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical):
                raise TypeError(f"column {c}: free strings are not supported, use an Enum")
        cat_cols = [c for c in feature_columns if c in categorical_columns or c in cats]
        return cls(list(feature_columns), cat_cols, cats)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored with the model)."""
        return {
            "feature_columns": self.feature_columns,
            "categorical_columns": self.categorical_columns,
            "categories": self.categories,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            list(data["feature_columns"]),
            list(data["categorical_columns"]),
            dict(data["categories"]),
        )

    def _expr(self, c: str, dtype: pl.DataType) -> pl.Expr:
        if c in self.categories:
            levels = self.categories[c]
            if isinstance(dtype, pl.Enum) and list(dtype.categories) == levels:
                return pl.col(c).to_physical().cast(pl.Float32)
            return (
                pl.col(c)
                .cast(pl.String)
                .replace_strict(
                    levels, list(range(len(levels))), default=None, return_dtype=pl.Float32
                )
            )
        return pl.col(c).cast(pl.Float32)

    def to_matrix(self, frame: pl.DataFrame, mask: pl.Series | None = None) -> np.ndarray:
        """Float32 ``(rows, features)`` matrix of the rows where ``mask`` is true (all rows if None);
        categories as codes, unknown/null as NaN.

        Filled one column at a time, so the peak memory is the matrix plus one column (no
        filtered copy of the whole frame).
        """
        schema = frame.schema
        n = frame.height if mask is None else int(mask.sum())
        x = np.empty((n, len(self.feature_columns)), dtype=np.float32)
        for j, c in enumerate(self.feature_columns):
            col = frame.get_column(c) if mask is None else frame.get_column(c).filter(mask)
            values = col.to_frame().select(self._expr(c, schema[c])).to_series()
            x[:, j] = values.to_numpy(allow_copy=True)
        return x

    def input_frame(self, frame: pl.DataFrame) -> Any:
        """pandas frame for the pyfunc model: categorical columns as strings, numbers as float64."""
        return frame.select(
            [
                pl.col(c).cast(pl.String) if c in self.categories else pl.col(c).cast(pl.Float64)
                for c in self.feature_columns
            ]
        ).to_pandas()


def lgb_params(
    params: Mapping[str, Any] | None = None, *, seed: int = 42, num_threads: int = 2
) -> dict[str, Any]:
    """Default parameters updated with ``params``, plus seed and thread count."""
    out = {**DEFAULT_PARAMS, **(params or {})}
    out.update(seed=seed, num_threads=num_threads)
    return out


def fit_booster(
    frame: pl.DataFrame,
    spec: ModelSpec,
    params: Mapping[str, Any],
    num_boost_round: int,
    mask: pl.Series | None = None,
) -> lgb.Booster:
    """Train one booster on the rows of ``frame`` where ``mask`` is true (target ``sales``)."""
    import lightgbm as lgb  # deferred: importing lightgbm is slow and not needed by the wiring

    x = spec.to_matrix(frame, mask)
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


def predict_matrix(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Point forecasts (units/day) of a model matrix, clipped at 0."""
    pred = booster.predict(x, num_threads=int(booster.params.get("num_threads", 2)))
    return np.clip(np.asarray(pred, np.float64), 0.0, None)


def predict_booster(booster: lgb.Booster, frame: pl.DataFrame, spec: ModelSpec) -> np.ndarray:
    """Point forecasts (units/day) of the rows of ``frame``, clipped at 0."""
    if frame.height == 0:
        return np.zeros(0)
    return predict_matrix(booster, spec.to_matrix(frame))


def importance_frame(booster: lgb.Booster) -> pl.DataFrame:
    """feature, gain, split of a booster, sorted by gain."""
    return pl.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain").astype(np.float64),
            "split": booster.feature_importance("split").astype(np.int64),
        }
    ).sort("gain", descending=True)


@dataclass
class DemandModel:
    """A direct and a recursive booster, averaged with fixed weights.

    *direct*: inputs known at the forecast origin (lags >= 28), one prediction per row.
    *recursive*: also the recent-sales features (:mod:`~forecasting_assets.modeling.recent`);
    over a horizon it predicts day by day, feeding its predictions back as sales.
    """

    boosters: dict[str, lgb.Booster]
    specs: dict[str, ModelSpec]
    weights: dict[str, float]

    @property
    def input_columns(self) -> list[str]:
        """Every column any part reads (the pyfunc input)."""
        return self.input_spec.feature_columns

    @property
    def input_spec(self) -> ModelSpec:
        """One spec over every part's columns (builds the pyfunc input frame)."""
        return input_spec(self.specs)

    def combine(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weighted average of the parts' predictions."""
        total = sum(self.weights[k] for k in parts)
        return sum(self.weights[k] * np.asarray(v, np.float64) for k, v in parts.items()) / total

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """One-step predictions of rows that carry every input column (recent features given)."""
        return self.combine(
            {k: predict_booster(b, frame, self.specs[k]) for k, b in self.boosters.items()}
        )

    def forecast_parts(self, rows: pl.DataFrame, history: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's forecast of ``rows`` (every series x the horizon days, sorted by id, d).

        ``history``: launched sales ``(series, days)`` up to the origin, same series order.
        """
        out = {}
        for k, booster in self.boosters.items():
            spec = self.specs[k]
            if k == RECURSIVE:
                out[k] = recursive_predict(booster, spec, rows, history)
            else:
                out[k] = predict_booster(booster, rows, spec)
        return out

    def forecast(self, rows: pl.DataFrame, history: np.ndarray) -> np.ndarray:
        """Blended horizon forecast of ``rows`` (see :meth:`forecast_parts`)."""
        return self.combine(self.forecast_parts(rows, history))

    def importance(self) -> pl.DataFrame:
        """feature, gain, split of the blend: each part's importance times its weight."""
        parts = [
            importance_frame(b).with_columns(
                pl.col("gain") * self.weights[k], pl.col("split") * self.weights[k]
            )
            for k, b in self.boosters.items()
        ]
        return (
            pl.concat(parts)
            .group_by("feature")
            .agg(pl.col("gain").sum(), pl.col("split").sum().round(0).cast(pl.Int64))
            .sort("gain", descending=True)
        )


DIRECT, RECURSIVE = "direct", "recursive"


def input_spec(specs: Mapping[str, ModelSpec]) -> ModelSpec:
    """One spec over the columns of every part."""
    cols = list(dict.fromkeys(c for s in specs.values() for c in s.feature_columns))
    cats = list(dict.fromkeys(c for s in specs.values() for c in s.categorical_columns))
    levels = {k: v for s in specs.values() for k, v in s.categories.items()}
    return ModelSpec(cols, cats, levels)


def model_specs(
    schema: Mapping[str, pl.DataType],
    feature_columns: Sequence[str],
    categorical_columns: Sequence[str],
    recursive_weight: float,
) -> tuple[dict[str, ModelSpec], dict[str, float]]:
    """Specs and weights of the parts: the direct model reads ``feature_columns``; the recursive
    one drops the sales lags >= 28 (its recent features supersede them) and adds the recent ones."""
    if not 0.0 <= recursive_weight <= 1.0:
        raise ValueError("recursive_weight must be within [0, 1]")
    specs, weights = {}, {}
    if recursive_weight < 1.0:
        specs[DIRECT] = ModelSpec.from_schema(schema, feature_columns, categorical_columns)
        weights[DIRECT] = 1.0 - recursive_weight
    if recursive_weight > 0.0:
        cols = [c for c in feature_columns if not c.startswith("sales_lag_")]
        specs[RECURSIVE] = ModelSpec.from_schema(
            schema, [*cols, *RECENT_COLUMNS], categorical_columns
        )
        weights[RECURSIVE] = recursive_weight
    return specs, weights


def fit_model(
    frame: pl.DataFrame,
    specs: Mapping[str, ModelSpec],
    weights: Mapping[str, float],
    params: Mapping[str, Any],
    num_boost_round: int,
    mask: pl.Series,
) -> DemandModel:
    """Train every part on the rows of ``frame`` where ``mask`` is true."""
    boosters = {k: fit_booster(frame, s, params, num_boost_round, mask) for k, s in specs.items()}
    return DemandModel(boosters, dict(specs), dict(weights))


def recursive_predict(
    booster: lgb.Booster, spec: ModelSpec, rows: pl.DataFrame, history: np.ndarray
) -> np.ndarray:
    """Day-by-day forecast: each day's recent features read the actuals and the predictions of
    the days before. Series not launched at the origin keep NaN history (features NaN).

    Recent-feature columns in ``rows`` are ignored (every row's are recomputed), so they may be
    absent.
    """
    n = history.shape[0]
    if n == 0 or rows.height % n:
        raise ValueError(f"{rows.height} rows do not cover {n} series x whole days")
    days = rows.height // n
    past = history[:, -CONTEXT_DAYS:]
    launched = np.isfinite(past[:, -1])
    y = np.concatenate([past, np.full((n, days), np.nan)], axis=1)
    placeholders = [pl.lit(None, pl.Float32).alias(c) for c in RECENT_COLUMNS if c not in rows]
    x = spec.to_matrix(rows.with_columns(placeholders))
    recent_idx = [spec.feature_columns.index(c) for c in RECENT_COLUMNS]
    pred = np.zeros((n, days))
    for step in range(days):
        col = past.shape[1] + step
        xd = x[np.arange(n) * days + step]
        xd[:, recent_idx] = recent_features(y, col)[:, 0, :]
        pred[:, step] = predict_matrix(booster, xd)
        y[:, col] = np.where(launched, pred[:, step], np.nan)
    return pred.reshape(-1)


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
    """Backtest forecasts of one fold, ``(n_series, horizon)`` in panel order."""

    fold: Fold
    forecast: np.ndarray
    train_rows: int
    seconds: float
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # each part's forecast


def backtest_model(
    features: pl.DataFrame,
    panel: Panel,
    folds: Sequence[Fold],
    specs: Mapping[str, ModelSpec],
    weights: Mapping[str, float],
    params: Mapping[str, Any],
    num_boost_round: int,
    train_start_d: int,
    encoder: Encoder | None = None,
    max_train_rows: int = 0,
    seed: int = 42,
) -> list[FoldOutput]:
    """Train the model on days ``train_start_d .. origin`` of each fold and forecast the fold.

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
        model = fit_model(frame, specs, weights, params, num_boost_round, mask)
        test = frame.filter(pl.col("d").is_between(fold.start, fold.end)).sort("id", "d")
        parts = model.forecast_parts(test, history_matrix(frame, fold.origin))
        out.append(
            FoldOutput(
                fold,
                as_panel_matrix(test, model.combine(parts), panel, fold.horizon),
                n_train,
                time.perf_counter() - t0,
                {k: as_panel_matrix(test, v, panel, fold.horizon) for k, v in parts.items()},
            )
        )
        logger.info("fold %s: %s training rows, %.1fs", fold.k, n_train, out[-1].seconds)
    return out


def history_matrix(frame: pl.DataFrame, origin: int) -> np.ndarray:
    """Launched sales of the last :data:`CONTEXT_DAYS` days up to ``origin`` (series x days)."""
    days = frame.filter(pl.col("d").is_between(origin - CONTEXT_DAYS + 1, origin))
    return sales_matrix(days.sort("id", "d"))
