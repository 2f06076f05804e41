"""Realized accuracy of earlier forecasts once their actuals exist, against their backtest.

WRMSSE is computed with helper M's :class:`forecasting_assets.modeling.metrics.WRMSSEEvaluator`
(12 M5 levels, scales from the history before the forecast's first day, weights = dollar sales of
the last 28 days before it), over the forecast days that have actuals (possibly fewer than 28).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.metrics import WRMSSEEvaluator
from forecasting_assets.monitoring.drift import status_from_value


def forecast_matrix(
    forecast: pl.DataFrame, ids: Sequence[str], dates: Sequence[Any], value: str = "predicted_sales"
) -> np.ndarray:
    """``(len(ids), len(dates))`` matrix of ``value`` (NaN where the forecast has no row)."""
    index = pl.DataFrame({"id": [str(i) for i in ids]}).with_row_index("_r")
    days = pl.DataFrame({"date": list(dates)}).with_row_index("_c")
    rows = (
        forecast.select(
            pl.col("id").cast(pl.String), pl.col("date"), pl.col(value).cast(pl.Float64)
        )
        .join(index, on="id", how="inner")
        .join(days, on="date", how="inner")
    )
    out = np.full((len(ids), len(dates)), np.nan)
    out[rows["_r"].to_numpy(), rows["_c"].to_numpy()] = rows[value].to_numpy()
    return out


def realized_wrmsse(
    history: np.ndarray,
    hierarchy: pl.DataFrame,
    dollar_sales: np.ndarray,
    actual: np.ndarray,
    forecast: np.ndarray,
) -> dict[str, Any]:
    """WRMSSE of ``forecast`` against ``actual`` (both ``(n, h)``) plus seasonal naive's.

    ``history`` ``(n, T)`` ends the day before the forecast's first day; seasonal naive repeats its
    last 7 days. Returns ``wrmsse``, ``per_level``, ``seasonal_naive_wrmsse`` and ``ratio``.
    """
    evaluator = WRMSSEEvaluator(history, hierarchy, dollar_sales)
    per = evaluator.score(actual, forecast)
    h = actual.shape[1]
    snaive = np.tile(history[:, -7:], (1, h // 7 + 1))[:, :h]
    sn = evaluator.score(actual, snaive)["all"]
    return {
        "wrmsse": per["all"],
        "per_level": {k: v for k, v in per.items() if k != "all"},
        "seasonal_naive_wrmsse": sn,
        "ratio_to_seasonal_naive": per["all"] / sn if sn > 0 else None,
    }


def accuracy_status(
    realized: float | None, backtest: float | None, *, warn: float = 0.05, alert: float = 0.10
) -> tuple[str, float | None]:
    """(status, degradation) with degradation = realized / backtest − 1.

    ``alert`` when the realized WRMSSE is worse than the backtest by more than ``alert``
    (default 10 %), ``warn`` above ``warn``; ``ok`` when either value is missing.
    """
    if realized is None or backtest is None or not backtest > 0 or not np.isfinite(realized):
        return "ok", None
    degradation = float(realized / backtest - 1.0)
    return status_from_value(degradation, warn, alert), degradation
