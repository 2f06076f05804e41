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


def predict_matrix(
    booster: lgb.Booster, x: np.ndarray, num_iteration: int | None = None
) -> np.ndarray:
    """Point forecasts (units/day) of a model matrix with the first ``num_iteration`` trees (all
    if None), clipped at 0."""
    pred = booster.predict(
        x, num_iteration=num_iteration, num_threads=int(booster.params.get("num_threads", 2))
    )
    return np.clip(np.asarray(pred, np.float64), 0.0, None)


def predict_booster(
    booster: lgb.Booster, frame: pl.DataFrame, spec: ModelSpec, num_iteration: int | None = None
) -> np.ndarray:
    """Point forecasts (units/day) of the rows of ``frame``, clipped at 0."""
    if frame.height == 0:
        return np.zeros(0)
    return predict_matrix(booster, spec.to_matrix(frame), num_iteration)


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
    """The parts of one group's model: a direct and a recursive booster (either may be absent).

    *direct*: inputs known at the forecast origin (lags >= 28), one prediction per row.
    *recursive*: also the recent-sales features (:mod:`~forecasting_assets.modeling.recent`);
    over a horizon it predicts day by day, feeding its predictions back as sales.
    :class:`ModelFamily` routes rows to members and blends their parts.
    """

    boosters: dict[str, lgb.Booster]
    specs: dict[str, ModelSpec]
    iterations: dict[str, int] = field(default_factory=dict)
    """Trees each part predicts with (all when absent): scores the backtest's checkpoints."""

    def forecast_parts(self, rows: pl.DataFrame, history: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's forecast of ``rows`` (every series x the horizon days, sorted by id, d).

        ``history``: launched sales ``(series, days)`` up to the origin, same series order.
        """
        out = {}
        for k, booster in self.boosters.items():
            spec = self.specs[k]
            it = self.iterations.get(k)
            if k == RECURSIVE:
                out[k] = recursive_predict(booster, spec, rows, history, it)
            else:
                out[k] = predict_booster(booster, rows, spec, it)
        return out


DIRECT, RECURSIVE = "direct", "recursive"
GLOBAL = "*"
"""Group key of the global model (all stores' rows), which serves the stores without their own."""


def store_groups(series_per_store: Mapping[str, int], min_series: int) -> dict[str, str]:
    """Which model serves each store: its own when it has at least ``min_series`` series
    (``min_series <= 0``: never), else the global one."""
    return {s: (s if 0 < min_series <= n else GLOBAL) for s, n in sorted(series_per_store.items())}


@dataclass
class ModelFamily:
    """Per-store demand models with a global one for the small stores (the top M5 solutions'
    structure). Each member is a :class:`DemandModel` whose parts are blended with the weights of
    the row's store (``recursive_weight``, chosen on the backtest; ``default_weight`` for stores
    not seen in training). Rows are routed by ``store_id``."""

    members: dict[str, DemandModel]
    store_group: dict[str, str]
    recursive_weight: dict[str, float] = field(default_factory=dict)
    default_weight: float = 0.5

    def group_of(self, stores: pl.Series) -> np.ndarray:
        """Group key of each store (unknown stores go to the global model, or the first one)."""
        fallback = GLOBAL if GLOBAL in self.members else next(iter(self.members))
        s = stores.cast(pl.String)
        return s.replace_strict(self.store_group, default=fallback).fill_null(fallback).to_numpy()

    @property
    def input_spec(self) -> ModelSpec:
        """One spec over every member's columns (builds the pyfunc input frame)."""
        return input_spec({f"{g}/{k}": s for g, m in self.members.items()
                           for k, s in m.specs.items()})  # fmt: skip

    @property
    def input_columns(self) -> list[str]:
        """Every column any member reads."""
        return self.input_spec.feature_columns

    def combine(self, parts: Mapping[str, np.ndarray], stores: pl.Series) -> np.ndarray:
        """Blend of the parts' predictions with each row's store weight."""
        if len(parts) == 1:
            return np.asarray(next(iter(parts.values())), np.float64)
        w = (
            stores.cast(pl.String)
            .replace_strict(self.recursive_weight, default=self.default_weight,
                            return_dtype=pl.Float64)
            .fill_null(self.default_weight)
            .to_numpy()
        )  # fmt: skip
        return (1.0 - w) * parts[DIRECT] + w * parts[RECURSIVE]

    def predict_parts(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Each part's one-step predictions of rows that carry every input column."""
        groups = self.group_of(frame.get_column("store_id"))
        out: dict[str, np.ndarray] = {}
        for g in np.unique(groups):
            sel = groups == g
            member = self.members[str(g)]
            sub = frame.filter(pl.Series(sel))
            for k, b in member.boosters.items():
                out.setdefault(k, np.zeros(frame.height))[sel] = predict_booster(
                    b, sub, member.specs[k], member.iterations.get(k)
                )
        return out

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """One-step blended predictions (the pyfunc's ``predict``)."""
        return self.combine(self.predict_parts(frame), frame.get_column("store_id"))

    def forecast_parts(self, rows: pl.DataFrame, history: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's horizon forecast of ``rows`` (every series x the horizon days, sorted by
        id, d), each series by its group's member; ``history`` in the same series order."""
        n = history.shape[0]
        if n == 0 or rows.height % n:
            raise ValueError(f"{rows.height} rows do not cover {n} series x whole days")
        days = rows.height // n
        series_group = self.group_of(rows.get_column("store_id").gather_every(days))
        out: dict[str, np.ndarray] = {}
        for g in np.unique(series_group):
            sel = series_group == g
            row_sel = np.repeat(sel, days)
            parts = self.members[str(g)].forecast_parts(rows.filter(pl.Series(row_sel)),
                                                        history[sel])  # fmt: skip
            for k, v in parts.items():
                out.setdefault(k, np.zeros(rows.height))[row_sel] = v
        return out

    def forecast(self, rows: pl.DataFrame, history: np.ndarray) -> np.ndarray:
        """Blended horizon forecast (see :meth:`forecast_parts`)."""
        return self.combine(self.forecast_parts(rows, history), rows.get_column("store_id"))

    def importance(self) -> pl.DataFrame:
        """feature, gain, split summed over every member's parts, each part weighted by its
        mean blend weight."""
        mean_w = float(np.mean(list(self.recursive_weight.values()) or [self.default_weight]))
        part_w = {DIRECT: 1.0 - mean_w, RECURSIVE: mean_w}
        frames = [
            importance_frame(b).with_columns(pl.col("gain") * part_w.get(k, 1.0),
                                             pl.col("split") * part_w.get(k, 1.0))
            for m in self.members.values() for k, b in m.boosters.items()
        ]  # fmt: skip
        return (
            pl.concat(frames)
            .group_by("feature")
            .agg(pl.col("gain").sum(), pl.col("split").sum().round(0).cast(pl.Int64))
            .sort("gain", descending=True)
        )


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
    parts: Sequence[str] = (DIRECT, RECURSIVE),
) -> dict[str, ModelSpec]:
    """Specs of the parts: the direct model reads ``feature_columns``; the recursive one drops
    the sales lags >= 28 (its recent features supersede them) and adds the recent ones."""
    unknown = set(parts) - {DIRECT, RECURSIVE}
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {DIRECT!r}, {RECURSIVE!r}")
    specs = {}
    if DIRECT in parts:
        specs[DIRECT] = ModelSpec.from_schema(schema, feature_columns, categorical_columns)
    if RECURSIVE in parts:
        cols = [c for c in feature_columns if not c.startswith("sales_lag_")]
        specs[RECURSIVE] = ModelSpec.from_schema(
            schema, [*cols, *RECENT_COLUMNS], categorical_columns
        )
    return specs


def fit_model(
    frame: pl.DataFrame,
    specs: Mapping[str, ModelSpec],
    params: Mapping[str, Any],
    rounds: Mapping[str, int],
    mask: pl.Series,
) -> DemandModel:
    """Train every part (``rounds[part]`` trees) on the rows of ``frame`` where ``mask`` is true."""
    boosters = {k: fit_booster(frame, s, params, rounds[k], mask) for k, s in specs.items()}
    return DemandModel(boosters, dict(specs))


def recursive_predict(
    booster: lgb.Booster,
    spec: ModelSpec,
    rows: pl.DataFrame,
    history: np.ndarray,
    num_iteration: int | None = None,
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
        pred[:, step] = predict_matrix(booster, xd, num_iteration)
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


def fit_family(
    frame: pl.DataFrame,
    specs: Mapping[str, ModelSpec],
    params: Mapping[str, Any],
    rounds: Mapping[str, int],
    mask: pl.Series,
    store_group: Mapping[str, str],
    recursive_weight: Mapping[str, float] | None = None,
) -> ModelFamily:
    """Train one :class:`DemandModel` per group of ``store_group`` on the rows of ``frame`` where
    ``mask`` is true: a store's own model on its rows, the global one on every store's rows."""
    stores = frame.get_column("store_id").cast(pl.String)
    members = {}
    for g in sorted(set(store_group.values())):
        m = mask if g == GLOBAL else mask & (stores == g)
        members[g] = fit_model(frame, specs, params, rounds, m)
    weights = dict(recursive_weight or {})
    default = float(np.mean(list(weights.values()))) if weights else 0.5
    return ModelFamily(members, dict(store_group), weights, default)


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
