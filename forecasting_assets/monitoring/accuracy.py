"""Realized accuracy of earlier forecasts once their actuals exist, against their backtest.

WRMSSE is computed with :class:`forecasting_assets.modeling.metrics.WRMSSEEvaluator`
(12 M5 levels, scales from the history before the forecast's first day, weights = dollar sales of
the last 28 days before it), over the forecast days that have actuals (possibly fewer than 28).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.backtest import build_panel
from forecasting_assets.modeling.metrics import WRMSSEEvaluator
from forecasting_assets.monitoring.archive import backtest_wrmsse, list_archives
from forecasting_assets.monitoring.drift import status_from_value

logger = logging.getLogger(__name__)


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


def realized_accuracy(
    sales_long: pl.LazyFrame,
    exports: Path,
    last_date: date,
    *,
    backtest_model: str,
    min_actual_days: int,
    warn: float,
    alert: float,
) -> dict[str, Any] | None:
    """Score the most recent archived forecast with ``min_actual_days`` of actuals (else None).

    Its realized WRMSSE is compared with the backtest WRMSSE recorded when it was archived (the
    current backtest export when none was): ``alert`` when worse by more than ``alert``.
    """
    candidates = [
        a
        for a in list_archives(exports)
        if (last_date - date.fromisoformat(a["first_date"])).days + 1 >= min_actual_days
    ]
    if not candidates:
        return None
    arch = candidates[-1]
    logger.info("scoring archived forecast %s against its actuals", arch["key"])
    forecast = pl.read_parquet(arch["path"])
    first = date.fromisoformat(arch["first_date"])
    panel = build_panel(sales_long)
    dates = (
        sales_long.filter(pl.col("date") >= first).select("d", "date").unique().sort("d").collect()
    )
    first_d = int(dates["d"][0])
    days = [d for d in forecast["date"].unique().sort().to_list() if first <= d <= last_date]
    ids = panel.hierarchy["id"].cast(pl.String).to_list()
    fc = forecast_matrix(forecast, ids, days)
    keep = ~np.isnan(fc).any(axis=1)
    if not keep.any():
        return None
    origin = first_d - 1
    col = panel.col(first_d)
    history = panel.history(origin)[keep]
    actual = panel.sales[keep, col : col + len(days)]
    scored = realized_wrmsse(
        history, panel.hierarchy.filter(pl.Series(keep)), panel.dollar_sales(origin)[keep],
        actual, fc[keep],
    )  # fmt: skip
    backtest = arch.get("backtest_wrmsse")
    if backtest is None:
        backtest = backtest_wrmsse(exports, backtest_model)
    status, degradation = accuracy_status(scored["wrmsse"], backtest, warn=warn, alert=alert)
    return {
        "archive": arch["key"],
        "model_version": arch.get("model_version"),
        "first_date": arch["first_date"],
        "days_with_actuals": len(days),
        "series": int(keep.sum()),
        "realized_wrmsse": scored["wrmsse"],
        "backtest_wrmsse": backtest,
        "degradation": degradation,
        "seasonal_naive_wrmsse": scored["seasonal_naive_wrmsse"],
        "ratio_to_seasonal_naive": scored["ratio_to_seasonal_naive"],
        "per_level": scored["per_level"],
        "threshold": alert,
        "status": status,
    }
