"""LightGBM demand model (direct, 28-day horizon) and its walk-forward backtest.

The model is *direct*: every input is known at the forecast origin (sales lags >= 28, rolling
windows ending at lag 28, calendar, prices, target encodings recomputed per fold from days
``<= origin``), so one model forecasts all 28 days without feeding predictions back.
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

if TYPE_CHECKING:
    import lightgbm as lgb

logger = logging.getLogger(__name__)

TARGET = "sales"

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.1,
    "learning_rate": 0.1,
    "num_leaves": 63,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.5,
    "bagging_freq": 1,
    "lambda_l2": 0.1,
    "max_bin": 63,
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


def predict_booster(booster: lgb.Booster, frame: pl.DataFrame, spec: ModelSpec) -> np.ndarray:
    """Point forecasts (units/day), clipped at 0."""
    if frame.height == 0:
        return np.zeros(0)
    pred = booster.predict(
        spec.to_matrix(frame), num_threads=int(booster.params.get("num_threads", 2))
    )
    return np.clip(np.asarray(pred, np.float64), 0.0, None)


def importance_frame(booster: lgb.Booster) -> pl.DataFrame:
    """feature, gain, split of a booster, sorted by gain."""
    return pl.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain").astype(np.float64),
            "split": booster.feature_importance("split").astype(np.int64),
        }
    ).sort("gain", descending=True)


def train_mask(features: pl.DataFrame, start_d: int, end_d: int) -> pl.Series:
    """Rows a model may learn from: ``start_d <= d <= end_d``, launched, target known."""
    expr = (
        pl.col("d").is_between(start_d, end_d)
        & pl.col("is_launched")
        & pl.col(TARGET).is_not_null()
    )
    return features.select(expr.fill_null(False).alias("train")).to_series()


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


def backtest_model(
    features: pl.DataFrame,
    panel: Panel,
    folds: Sequence[Fold],
    spec: ModelSpec,
    params: Mapping[str, Any],
    num_boost_round: int,
    train_start_d: int,
    encoder: Encoder | None = None,
) -> list[FoldOutput]:
    """Train one model per fold on days ``train_start_d .. origin`` and forecast the fold.

    Leakage guard: training rows end at the fold origin (asserted), and target encodings are
    recomputed from days ``<= origin`` by ``encoder``.
    """
    out = []
    for fold in folds:
        t0 = time.perf_counter()
        frame = encoder(features, fold.origin) if encoder else features
        mask = train_mask(frame, train_start_d, fold.origin)
        n_train = int(mask.sum())
        if n_train == 0:
            raise ValueError(
                f"fold {fold.k}: no training rows in d_{train_start_d}..d_{fold.origin}"
            )
        if int(frame.get_column("d").filter(mask).max()) > fold.origin:  # pragma: no cover
            raise AssertionError("training rows after the fold origin")
        booster = fit_booster(frame, spec, params, num_boost_round, mask)
        test = frame.filter(pl.col("d").is_between(fold.start, fold.end)).sort("id", "d")
        pred = predict_booster(booster, test, spec)
        out.append(
            FoldOutput(
                fold,
                as_panel_matrix(test, pred, panel, fold.horizon),
                n_train,
                time.perf_counter() - t0,
            )
        )
        logger.info("fold %s: %s training rows, %.1fs", fold.k, n_train, out[-1].seconds)
    return out
