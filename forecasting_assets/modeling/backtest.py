"""Walk-forward backtest: fold definitions, the series x day panel, and scoring.

A fold with origin ``o`` trains on days ``d <= o`` and forecasts ``o+1 .. o+horizon``. The last
fold ends at the last history day (on real M5: origin d_1913, forecasting d_1914..d_1941).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from forecasting_assets.modeling import metrics
from forecasting_assets.modeling.baselines import BASELINES

logger = logging.getLogger(__name__)

HIERARCHY_COLS: tuple[str, ...] = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
METRIC_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "fold": pl.Int32(),
    "level": pl.String(),
    "wrmsse": pl.Float64(),
    "mae": pl.Float64(),
    "rmse": pl.Float64(),
    "bias": pl.Float64(),
}


@dataclass(frozen=True)
class Fold:
    """One backtest fold: train on ``d <= origin``, forecast ``origin+1 .. origin+horizon``."""

    k: int
    origin: int
    horizon: int

    @property
    def start(self) -> int:
        """First forecast day."""
        return self.origin + 1

    @property
    def end(self) -> int:
        """Last forecast day."""
        return self.origin + self.horizon


SEASONAL_LAGS: tuple[int, ...] = (364, 728)
"""Seasonal folds: the forecast window's 28 calendar days one and two years (52/104 weeks) back."""
MIN_FOLD_HISTORY = 364
"""Days of history a fold origin needs (seasonal folds without it are skipped)."""


@dataclass(frozen=True)
class FoldPlan:
    """Which backtest folds a model and the baselines are scored on.

    ``recent`` consecutive windows ending at the last history day, plus, for every lag in
    ``seasonal``, the window ``lag`` days before the forecast window (so the season of the next
    forecast is always covered). The headline is the mean over all folds.
    """

    recent: int = 4
    seasonal: tuple[int, ...] = SEASONAL_LAGS
    horizon: int = 28

    def folds(self, last_day: int, first_day: int = 1) -> list[Fold]:
        """The folds on data ``first_day .. last_day``, oldest first, numbered 1..n."""
        return make_folds(last_day, self.recent, self.horizon, seasonal=self.seasonal,
                          first_day=first_day)  # fmt: skip


def make_folds(
    last_day: int,
    n_folds: int = 3,
    horizon: int = 28,
    step: int | None = None,
    seasonal: tuple[int, ...] = (),
    first_day: int = 1,
) -> list[Fold]:
    """``n_folds`` consecutive folds, the most recent ending at ``last_day``, plus one fold per
    ``seasonal`` lag: origin ``last_day - lag``, i.e. the next forecast window ``lag`` days back.

    Seasonal folds that coincide with a recent one, or whose origin has less than
    :data:`MIN_FOLD_HISTORY` days of history, are left out. Numbered 1..n by origin (oldest first).
    """
    step = horizon if step is None else step
    if n_folds < 1:
        raise ValueError("n_folds must be >= 1")
    origins = {last_day - horizon - i * step for i in range(n_folds)}
    if min(origins) < first_day + 1:
        raise ValueError(f"not enough history for {n_folds} folds of {horizon} days")
    for lag in seasonal:
        origin = last_day - lag
        if origin - first_day + 1 >= MIN_FOLD_HISTORY:
            origins.add(origin)
        else:
            logger.info("seasonal fold %s days back skipped: too little history", lag)
    return [Fold(k=i + 1, origin=o, horizon=horizon) for i, o in enumerate(sorted(origins))]


def fold_definition(folds: list[Fold]) -> str:
    """Stable text identity of a fold set (compared by the promotion gate)."""
    return json.dumps([[f.k, f.origin, f.horizon] for f in folds])


@dataclass
class Panel:
    """History of every series as dense matrices (rows in ``hierarchy`` order, columns = days)."""

    hierarchy: pl.DataFrame
    first_day: int
    sales: np.ndarray  # (n, T) float64, history days only
    price: np.ndarray  # (n, T) float32, NaN when not on sale

    @property
    def last_day(self) -> int:
        """Last history day (d number)."""
        return self.first_day + self.sales.shape[1] - 1

    def col(self, d: int) -> int:
        """Column index of day ``d``."""
        return d - self.first_day

    def history(self, origin: int) -> np.ndarray:
        """Sales up to and including ``origin``."""
        return self.sales[:, : self.col(origin) + 1]

    def actuals(self, fold: Fold) -> np.ndarray:
        """Sales of the fold's forecast days."""
        if fold.end > self.last_day:
            raise ValueError(f"fold {fold.k} ends after the last history day {self.last_day}")
        return self.sales[:, self.col(fold.start) : self.col(fold.end) + 1]

    def dollar_sales(self, origin: int, days: int = 28) -> np.ndarray:
        """Units x price per series over the ``days`` training days ending at ``origin``."""
        lo, hi = self.col(origin) - days + 1, self.col(origin) + 1
        lo = max(lo, 0)
        return np.nansum(self.sales[:, lo:hi] * self.price[:, lo:hi], axis=1)

    def evaluator(self, fold: Fold) -> metrics.WRMSSEEvaluator:
        """WRMSSE evaluator with scales/weights from the data known at the fold origin."""
        return metrics.WRMSSEEvaluator(
            self.history(fold.origin), self.hierarchy, self.dollar_sales(fold.origin)
        )


def build_panel(sales_long: pl.LazyFrame | pl.DataFrame) -> Panel:
    """Dense panel of the history days (sales not null) of ``sales_long``."""
    lf = sales_long.lazy()
    hist = (
        lf.filter(pl.col("sales").is_not_null())
        .select(*HIERARCHY_COLS, "d", "sales", "sell_price")
        .sort("id", "d")
        .collect()
    )
    n_days = hist["d"].n_unique()
    first_day = int(hist["d"].min())
    n = hist.height // n_days
    if n * n_days != hist.height:
        raise ValueError("sales_long history is not a complete series x day grid")
    hierarchy = hist.select(HIERARCHY_COLS).gather_every(n_days)
    sales = hist["sales"].cast(pl.Float64).to_numpy().reshape(n, n_days)
    price = (
        hist["sell_price"].cast(pl.Float32).fill_null(float("nan")).to_numpy().reshape(n, n_days)
    )
    return Panel(hierarchy=hierarchy, first_day=first_day, sales=sales, price=price)


def score_rows(
    model: str,
    fold: Fold,
    evaluator: metrics.WRMSSEEvaluator,
    actual: np.ndarray,
    forecast: np.ndarray,
) -> list[dict[str, object]]:
    """Metric rows (one per level + ``all``) of one model on one fold."""
    per = evaluator.score(actual, forecast)
    rows: list[dict[str, object]] = []
    for level, value in per.items():
        bottom = level in ("all", metrics.BOTTOM_LEVEL)
        rows.append(
            {
                "model": model,
                "fold": fold.k,
                "level": level,
                "wrmsse": value,
                "mae": metrics.mae(actual, forecast) if bottom else None,
                "rmse": metrics.rmse(actual, forecast) if bottom else None,
                "bias": metrics.bias(actual, forecast) if bottom else None,
            }
        )
    return rows


def metrics_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Rows -> a frame with the backtest_metrics.parquet schema."""
    return pl.DataFrame(rows, schema=METRIC_SCHEMA)


def backtest_baselines(
    panel: Panel,
    folds: list[Fold],
    baselines: Mapping[str, Callable[[np.ndarray, int], np.ndarray]] = BASELINES,
) -> pl.DataFrame:
    """Score every baseline on every fold."""
    rows: list[dict[str, object]] = []
    for fold in folds:
        ev = panel.evaluator(fold)
        hist = panel.history(fold.origin)
        actual = panel.actuals(fold)
        for name, fn in baselines.items():
            rows.extend(score_rows(name, fold, ev, actual, fn(hist, fold.horizon)))
        logger.info("baselines scored on fold %s (origin d_%s)", fold.k, fold.origin)
    return metrics_frame(rows)


@dataclass(frozen=True)
class Headline:
    """A model's backtest summary: the WRMSSE ratio to a baseline on every fold, and its spread."""

    ratio_mean: float
    ratio_min: float
    ratio_max: float
    wrmsse_mean: float
    baseline_wrmsse_mean: float
    ratios: dict[int, float]

    def describe(self) -> str:
        """``0.663x (0.61-0.70x over 6 folds)``."""
        return (f"{self.ratio_mean:.3f}x seasonal naive ({self.ratio_min:.3f}-{self.ratio_max:.3f}x"
                f" over {len(self.ratios)} folds)")  # fmt: skip


def headline(frame: pl.DataFrame, model: str, baseline: str = "seasonal_naive") -> Headline:
    """Mean, min and max over the folds of ``model``'s WRMSSE ratio to ``baseline`` (level all)."""
    both = (
        frame.filter(pl.col("level") == "all")
        .pivot(on="model", index="fold", values="wrmsse")
        .select("fold", pl.col(model).alias("m"), pl.col(baseline).alias("b"))
        .drop_nulls()
        .sort("fold")
    )
    if both.height == 0:
        raise KeyError(f"no folds with both {model} and {baseline}")
    ratio = both["m"] / both["b"]
    return Headline(
        ratio_mean=float(ratio.mean()),  # type: ignore[arg-type]
        ratio_min=float(ratio.min()),  # type: ignore[arg-type]
        ratio_max=float(ratio.max()),  # type: ignore[arg-type]
        wrmsse_mean=float(both["m"].mean()),  # type: ignore[arg-type]
        baseline_wrmsse_mean=float(both["b"].mean()),  # type: ignore[arg-type]
        ratios=dict(zip(both["fold"].to_list(), ratio.to_list(), strict=True)),
    )


def headline_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """Per model: the mean over the backtest folds of its WRMSSE ratio to seasonal naive, with its
    min and max, and its mean WRMSSE; best first."""
    models = metrics["model"].unique().sort().to_list()
    heads = {m: headline(metrics, m) for m in models}
    return pl.DataFrame(
        {
            "model": models,
            "mean_ratio": [heads[m].ratio_mean for m in models],
            "min_ratio": [heads[m].ratio_min for m in models],
            "max_ratio": [heads[m].ratio_max for m in models],
            "mean_wrmsse": [heads[m].wrmsse_mean for m in models],
            "folds": [len(heads[m].ratios) for m in models],
        }
    ).sort("mean_ratio")
