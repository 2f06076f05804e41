"""Batch forecast frames (the forecasts exports) and their sanity checks (pure polars/numpy)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

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
"""Exact column order of forecasts.parquet (CONTRACTS.md)."""

AGGREGATE_LEVELS: dict[str, tuple[str, ...]] = {
    "total": (),
    "state": ("state_id",),
    "store": ("store_id",),
    "cat": ("cat_id",),
    "dept": ("dept_id",),
}
VALUE_COLUMNS: tuple[str, ...] = ("predicted_sales", "lower", "upper", *QUANTILE_COLUMNS)


def forecast_frame(
    rows: pl.DataFrame, point: np.ndarray, calibration: ConformalQuantiles, model_version: str
) -> pl.DataFrame:
    """Forecast rows with point, quantiles and the 80 % interval (``lower``=q100, ``upper``=q900).

    ``rows`` holds ``id, item_id, dept_id, cat_id, store_id, state_id, date`` of the horizon days;
    the hierarchy columns are kept (as strings) for aggregation, :func:`export_frame` drops them.
    """
    point = np.clip(np.asarray(point, np.float64), 0.0, None)
    q = calibration.predict(point)
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


def aggregate_forecasts(forecasts: pl.DataFrame, calibration: ConformalQuantiles) -> pl.DataFrame:
    """Sums per level (total/state/store/cat/dept) and date.

    ``predicted_sales`` is the sum of series forecasts; ``lower``/``upper`` scale it by the
    level's backtest relative-error quantiles (q100/q900) when calibrated, else they are the sums of
    the series bounds (a conservative, too-wide interval).
    """
    q_levels = list(calibration.quantiles)
    lo_i, hi_i = q_levels.index(LOWER_Q), q_levels.index(UPPER_Q)
    frames = []
    for level, cols in AGGREGATE_LEVELS.items():
        key = pl.concat_str(list(cols), separator="_") if cols else pl.lit("Total")
        agg = (
            forecasts.with_columns(key.alias("level_id"))
            .group_by("level_id", "date")
            .agg(pl.col("predicted_sales", "lower", "upper").sum())
            .sort("level_id", "date")
        )
        if level in calibration.level_relative:
            q = calibration.predict_level(level, agg["predicted_sales"].to_numpy())
            agg = agg.with_columns(
                pl.Series("lower", np.minimum(q[:, lo_i], agg["predicted_sales"].to_numpy())),
                pl.Series("upper", np.maximum(q[:, hi_i], agg["predicted_sales"].to_numpy())),
            )
        frames.append(
            agg.select(
                pl.lit(level).alias("level"),
                "level_id",
                "date",
                "predicted_sales",
                "lower",
                "upper",
            )
        )
    return pl.concat(frames)


@dataclass
class CheckOutcome:
    """Result of one forecast check."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
