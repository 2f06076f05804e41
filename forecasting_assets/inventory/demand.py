"""Demand statistics, Syntetos–Boylan demand classes and the protection-period error dispersion.

Histories are ``(n_series, n_days)`` float arrays with ``NaN`` for days that are not demand
observations (before a series' launch, i.e. its leading zeros, or outside the data).
"""

from __future__ import annotations

import numpy as np
import polars as pl

ADI_CUTOFF = 1.32
"""Average inter-demand interval cut-off (Syntetos & Boylan, 2005)."""
CV2_CUTOFF = 0.49
"""Squared coefficient of variation of the non-zero demand sizes cut-off."""
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")
"""``no_demand``: no non-zero demand in the window (nothing to stock)."""


def demand_statistics(history: np.ndarray) -> dict[str, np.ndarray]:
    """ADI, CV² of non-zero sizes, mean daily demand and counts per series.

    ADI = observed days / days with non-zero demand (``inf`` without any demand);
    CV² = population variance / mean² of the non-zero demand sizes (``nan`` without demand).
    """
    h = np.asarray(history, dtype=np.float64)
    valid = ~np.isnan(h)
    n_days = valid.sum(axis=1)
    positive = np.where(valid, h, 0.0) > 0
    n_pos = positive.sum(axis=1)
    sizes = np.where(positive, h, 0.0)
    total = sizes.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_size = total / n_pos
        var_size = (sizes**2).sum(axis=1) / n_pos - mean_size**2
        cv2 = np.where(n_pos > 0, np.maximum(var_size, 0.0) / mean_size**2, np.nan)
        adi = np.where(n_pos > 0, n_days / np.maximum(n_pos, 1), np.inf)
        mean_daily = np.where(n_days > 0, total / np.maximum(n_days, 1), 0.0)
    return {
        "adi": adi,
        "cv2": cv2,
        "mean_daily_demand": mean_daily,
        "n_days": n_days,
        "n_nonzero": n_pos,
    }


def classify_demand(adi: np.ndarray, cv2: np.ndarray) -> np.ndarray:
    """Demand class per series: smooth, erratic, intermittent, lumpy (or no_demand).

    ``adi < 1.32`` and ``cv2 < 0.49`` → smooth; ``adi < 1.32`` and ``cv2 >= 0.49`` → erratic;
    ``adi >= 1.32`` and ``cv2 < 0.49`` → intermittent; otherwise lumpy. Series without any
    non-zero demand (``adi`` infinite or ``cv2`` nan) are ``no_demand``.
    """
    adi = np.asarray(adi, dtype=np.float64)
    cv2 = np.asarray(cv2, dtype=np.float64)
    frequent = adi < ADI_CUTOFF
    regular = cv2 < CV2_CUTOFF
    none = ~np.isfinite(adi) | np.isnan(cv2)
    return np.select(
        [none, frequent & regular, frequent & ~regular, ~frequent & regular],
        ["no_demand", "smooth", "erratic", "intermittent"],
        default="lumpy",
    ).astype(object)


def level_forecast(history: np.ndarray, window: int = 28) -> np.ndarray:
    """Daily level forecast: mean of the last ``window`` observed days (0 without observations)."""
    tail = np.asarray(history, dtype=np.float64)[:, -window:]
    n = (~np.isnan(tail)).sum(axis=1)
    return np.where(n > 0, np.nansum(tail, axis=1) / np.maximum(n, 1), 0.0)


def fit_protection_dispersion(
    history: np.ndarray,
    protection_days: int,
    *,
    level_window: int = 28,
    fit_days: int = 364,
    step: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """Variance-to-mean ratio of the protection-period forecast error, fitted on history.

    Walk forward over the last ``fit_days`` days every ``step`` days: at each origin ``t`` the
    forecast of the next ``protection_days`` days' demand is ``protection_days`` × the mean of the
    previous ``level_window`` days; its squared error against the realized sum is averaged over
    the origins (MSE, so bias counts too) and divided by the mean realized protection-period
    demand. Origins whose windows hold a ``NaN`` (not launched) are skipped.

    Returns ``(dispersion, n_origins)``; dispersion is floored at 1 (Poisson) and is 1 where no
    origin could be evaluated. Demand over ``P`` days is then modelled with mean ``μ·P`` and
    variance ``dispersion·μ·P``.
    """
    h = np.asarray(history, dtype=np.float64)
    n, t_total = h.shape
    p = int(protection_days)
    start = max(level_window, t_total - fit_days)
    origins = np.arange(start, t_total - p + 1, step)
    if len(origins) == 0 or p <= 0:
        return np.ones(n), np.zeros(n, dtype=np.int64)
    nan = np.isnan(h)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(np.where(nan, 0.0, h), axis=1)], axis=1)
    cnan = np.concatenate([np.zeros((n, 1)), np.cumsum(nan, axis=1)], axis=1)
    level = (csum[:, origins] - csum[:, origins - level_window]) / level_window
    actual = csum[:, origins + p] - csum[:, origins]
    ok = (cnan[:, origins + p] - cnan[:, origins - level_window]) == 0
    err2 = np.where(ok, (actual - p * level) ** 2, 0.0)
    n_ok = ok.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = err2.sum(axis=1) / n_ok
        mean_actual = np.where(ok, actual, 0.0).sum(axis=1) / n_ok
        disp = np.where((n_ok > 0) & (mean_actual > 0), mse / mean_actual, 1.0)
    return np.maximum(np.nan_to_num(disp, nan=1.0, posinf=1.0), 1.0), n_ok


def demand_distribution(
    series: pl.DataFrame,
    history: np.ndarray,
    forecasts: pl.DataFrame,
    protection_days: pl.Series,
    *,
    level_window: int = 28,
    fit_days: int = 364,
) -> pl.DataFrame:
    """Per series: demand class, forecast daily mean over its protection period, dispersion.

    ``series`` has an ``id`` column (String) and one row per row of ``history`` (its sales, NaN
    where no demand observation, last day last); ``forecasts`` has id, date, predicted_sales;
    ``protection_days`` (lead time + review, per series) picks the forecast days averaged into
    ``mean_daily_demand`` and the period of the dispersion fit (:func:`fit_protection_dispersion`
    over the last ``fit_days`` days). ADI / CV² are over the last ``fit_days`` days. Series
    without a forecast are dropped. The inventory plan and the dashboard's what-if both use this.
    """
    stats = demand_statistics(history[:, -fit_days:])
    protection = protection_days.round().cast(pl.Int64)
    disp = np.ones(series.height)
    for p in protection.unique().to_list():
        rows = (protection == p).to_numpy()
        disp[rows], _ = fit_protection_dispersion(
            history[rows], int(p), level_window=level_window, fit_days=fit_days
        )
    periods = sorted(int(p) for p in protection.unique().to_list())
    means = forecasts.group_by(pl.col("id").cast(pl.String)).agg(
        pl.col("predicted_sales").cast(pl.Float64).sort_by("date").head(p).mean().alias(f"_m{p}")
        for p in periods
    )
    dist = series.with_columns(
        pl.Series("adi", stats["adi"]),
        pl.Series("cv2", stats["cv2"]),
        pl.Series("demand_class", classify_demand(stats["adi"], stats["cv2"]), dtype=pl.String),
        pl.Series("dispersion", disp),
        protection.alias("_p"),
    ).join(means, on="id", how="inner")
    pick = pl.coalesce([pl.when(pl.col("_p") == p).then(pl.col(f"_m{p}")) for p in periods])
    dist = dist.with_columns(pick.alias("mean_daily_demand")).drop([f"_m{p}" for p in periods])
    return dist.drop("_p")
