"""Batch forecast frames (the forecasts exports) and their sanity checks (pure polars/numpy)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

from forecasting_assets.contracts import BOTTOM_LEVEL, M5_LEVELS, CheckOutcome
from forecasting_assets.modeling.quantile_calibration import QuantileCalibration
from forecasting_assets.modeling.quantiles import (
    LOWER_Q,
    QUANTILE_COLUMNS,
    UPPER_Q,
    ConformalQuantiles,
    quantile_column,
)

FORECAST_COLUMNS: tuple[str, ...] = (
    "id", "item_id", "store_id", "date", "predicted_sales", "lower", "upper",
    *QUANTILE_COLUMNS, "model_version",
)  # fmt: skip
"""Exact column order of forecasts.parquet (its schema: ``export_schemas.ForecastsSchema``)."""

AGGREGATE_LEVELS: dict[str, tuple[str, ...]] = M5_LEVELS
"""Levels of forecasts_aggregated.parquet: all 12 M5 levels."""
AGGREGATED_COLUMNS: tuple[str, ...] = (
    "level", "level_id", "date", "predicted_sales", "lower", "upper", *QUANTILE_COLUMNS,
)  # fmt: skip
"""Exact column order of forecasts_aggregated.parquet."""
VALUE_COLUMNS: tuple[str, ...] = ("predicted_sales", "lower", "upper", *QUANTILE_COLUMNS)


Calibration = QuantileCalibration | ConformalQuantiles


def quantile_matrix(
    calibration: Calibration, point: np.ndarray, rows: pl.DataFrame | Sequence[str]
) -> np.ndarray:
    """Quantiles ``(n, Q)`` of the bottom-level point forecasts ``point``; ``rows`` gives each
    forecast's series (a frame with ``id``, or the ids): per series with a
    :class:`QuantileCalibration`, id-free with a legacy :class:`ConformalQuantiles`."""
    if isinstance(calibration, QuantileCalibration):
        return calibration.predict(point, rows)
    return calibration.predict(point)


def forecast_frame(
    rows: pl.DataFrame, point: np.ndarray, calibration: Calibration, model_version: str
) -> pl.DataFrame:
    """Forecast rows with point, quantiles and the 80 % interval (``lower``=q100, ``upper``=q900).

    ``rows`` holds ``id, item_id, dept_id, cat_id, store_id, state_id, date`` of the horizon days;
    the hierarchy columns are kept (as strings) for aggregation, :func:`export_frame` drops them.
    """
    point = np.clip(np.asarray(point, np.float64), 0.0, None)
    q = quantile_matrix(calibration, point, rows)
    qcols = {quantile_column(level): q[:, i] for i, level in enumerate(calibration.quantiles)}
    base = rows.select(
        *[
            pl.col(c).cast(pl.String)
            for c in ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
        ],
        pl.col("date").cast(pl.Date),
    )
    return base.with_columns(
        pl.Series("predicted_sales", point),
        pl.Series("lower", qcols[quantile_column(LOWER_Q)]),
        pl.Series("upper", qcols[quantile_column(UPPER_Q)]),
        *[pl.Series(name, qcols[name]) for name in QUANTILE_COLUMNS],
        pl.lit(str(model_version)).alias("model_version"),
    )


def export_frame(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Only the contract columns of forecasts.parquet, in order."""
    return forecasts.select(FORECAST_COLUMNS)


def _level_id(cols: tuple[str, ...]) -> pl.Expr:
    return pl.concat_str(list(cols), separator="_") if cols else pl.lit("Total")


def aggregate_forecasts(forecasts: pl.DataFrame, calibration: Calibration) -> pl.DataFrame:
    """Forecasts of every series of the 12 M5 levels (forecasts_aggregated.parquet).

    Columns (:data:`AGGREGATED_COLUMNS`): ``level`` (M5 level name, e.g. ``store_dept``),
    ``level_id`` (its keys joined by ``_``: ``Total``, ``CA``, ``CA_1_FOODS_1``,
    ``FOODS_1_001_CA_1``...), ``date``, ``predicted_sales`` (the sum of the series' point
    forecasts), ``lower``/``upper`` (the 80 % interval, = ``q100``/``q900``) and the quantiles
    ``q005 .. q995`` (including the nine M5 ones). The bottom level (``item_store``) repeats the
    series' own forecasts. Upper levels' quantiles come from the level's own calibration
    (:class:`QuantileCalibration`: quantiles of sums are not sums of quantiles); with a legacy
    :class:`ConformalQuantiles` they scale the sum by the level's relative errors where
    calibrated, else they are the sums of the series' quantiles (too wide).
    """
    frames = []
    for level, cols in AGGREGATE_LEVELS.items():
        keyed = forecasts.with_columns(_level_id(cols).alias("level_id"))
        if level == BOTTOM_LEVEL:
            agg = keyed.sort("level_id", "date")
        else:
            agg = (
                keyed.group_by("level_id", "date")
                .agg(pl.col("predicted_sales", *QUANTILE_COLUMNS).sum())
                .sort("level_id", "date")
            )
            point = agg["predicted_sales"].to_numpy()
            q = None
            if isinstance(calibration, QuantileCalibration):
                if level in calibration.levels:
                    q = calibration.predict_level(level, point, agg["level_id"].to_list())
            elif level in calibration.level_relative:
                q = calibration.predict_level(level, point)
            if q is not None:
                agg = agg.with_columns(
                    pl.Series(name, q[:, i]) for i, name in enumerate(QUANTILE_COLUMNS)
                )
            agg = agg.with_columns(
                pl.min_horizontal(quantile_column(LOWER_Q), "predicted_sales").alias("lower"),
                pl.max_horizontal(quantile_column(UPPER_Q), "predicted_sales").alias("upper"),
            )
        frames.append(agg.with_columns(pl.lit(level).alias("level")).select(AGGREGATED_COLUMNS))
    return pl.concat(frames)


def check_days_per_series(forecasts: pl.DataFrame, horizon: int = 28) -> CheckOutcome:
    """Every series has exactly ``horizon`` distinct days."""
    per = forecasts.group_by("id").agg(
        pl.len().alias("rows"), pl.col("date").n_unique().alias("days")
    )
    bad = per.filter((pl.col("rows") != horizon) | (pl.col("days") != horizon))
    return CheckOutcome(
        bad.height == 0 and per.height > 0,
        f"{bad.height} of {per.height} series do not have exactly {horizon} forecast days",
        {
            "series": per.height,
            "bad_series": bad.height,
            "examples": bad.head(5)["id"].cast(pl.String).to_list(),
        },
    )


def check_finite_non_negative(forecasts: pl.DataFrame) -> CheckOutcome:
    """Point forecasts, bounds and quantiles are finite and >= 0."""
    cols = [c for c in VALUE_COLUMNS if c in forecasts.columns]
    bad = forecasts.select(
        [
            (~pl.col(c).cast(pl.Float64).is_finite() | (pl.col(c) < 0) | pl.col(c).is_null())
            .sum()
            .alias(c)
            for c in cols
        ]
    ).row(0, named=True)
    n_bad = int(sum(bad.values()))
    return CheckOutcome(n_bad == 0, f"{n_bad} non-finite, null or negative forecast values",
                        {k: int(v) for k, v in bad.items() if v})  # fmt: skip


def check_interval_order(forecasts: pl.DataFrame, tol: float = 1e-9) -> CheckOutcome:
    """``lower <= predicted_sales <= upper`` and quantiles non-decreasing."""
    cond = (pl.col("lower") <= pl.col("predicted_sales") + tol) & (
        pl.col("predicted_sales") <= pl.col("upper") + tol
    )
    qcols = [c for c in QUANTILE_COLUMNS if c in forecasts.columns]
    for a, b in itertools.pairwise(qcols):
        cond = cond & (pl.col(a) <= pl.col(b) + tol)
    n_bad = int(forecasts.select((~cond).fill_null(True).sum()).item())
    return CheckOutcome(n_bad == 0, f"{n_bad} rows violate lower <= predicted_sales <= upper or quantile order",
                        {"bad_rows": n_bad})  # fmt: skip


def check_totals_plausible(
    forecasts: pl.DataFrame, history_last_28: float, max_ratio: float = 3.0, min_ratio: float = 0.2
) -> CheckOutcome:
    """Forecast total over the horizon vs the last 28 history days: flag a > ``max_ratio`` jump or a
    collapse below ``min_ratio`` (e.g. to zero)."""
    total = float(forecasts["predicted_sales"].sum())
    ratio = total / history_last_28 if history_last_28 > 0 else (np.inf if total > 0 else 1.0)
    ok = bool(min_ratio <= ratio <= max_ratio)
    return CheckOutcome(
        ok,
        f"forecast total {total:,.0f} is {ratio:.2f}x the last 28 days' sales {history_last_28:,.0f}"
        f" (allowed {min_ratio}..{max_ratio})",
        {"forecast_total": total, "history_last_28": float(history_last_28), "ratio": float(ratio)},
    )


def hard_checks(forecasts: pl.DataFrame, horizon: int = 28) -> list[CheckOutcome]:
    """The checks that must pass before the exports are replaced."""
    return [
        check_days_per_series(forecasts, horizon),
        check_finite_non_negative(forecasts),
        check_interval_order(forecasts),
    ]
