"""Recent-sales features: means of the days up to yesterday (the recursive part), or up to the
forecast origin (the direct part, :func:`origin_features`).

One numpy function computes them from a dense ``(series, days)`` sales matrix, so training (on
actual sales), the recursive forecast (on actuals followed by the model's own predictions) and the
API (on one series' history) all use the same definition. Days before launch or without sales
are NaN in the matrix and are skipped by the means.

Only means, no single-day lags: fed back, a fractional prediction (0.3) looks like "sold
yesterday" to splits learnt on integer lags and inflates intermittent series. On the real M5
subset, lags 1..21 made the recursive part overforecast fold d_1858..d_1885 by ~15 % (WRMSSE
1.16x seasonal naive); with means only it was 0.85x.
"""

from __future__ import annotations

import numpy as np
import polars as pl

RECENT_WINDOWS: tuple[int, ...] = (7, 14, 28)
"""Rolling means over the ``w`` days ending the day before (d-w .. d-1)."""

RECENT_COLUMNS: tuple[str, ...] = (
    *(f"recent_mean_{w}" for w in RECENT_WINDOWS),
    "recent_mean_7_lag_7",  # d-13 .. d-7: last week's level one week earlier
)
CONTEXT_DAYS = max(*RECENT_WINDOWS, 13)
"""Days of history before a row that its recent features read."""

DAYS_AHEAD = "days_ahead"
"""Days from the forecast origin to the row's day (1: the day after). A part that reads it reads
the recent features as of the origin (:func:`origin_features`), not as of the day before."""


def recent_features(sales: np.ndarray, days: np.ndarray | int) -> np.ndarray:
    """Features of columns ``days`` of ``sales`` (``(n, T)``, NaN = unknown/not launched), for
    every series.

    Returns float32 ``(n, len(days), len(RECENT_COLUMNS))``; NaN where a window holds no known
    day (``recent_mean_7_lag_7`` also where it would start before column 0).
    """
    n = np.asarray(sales).shape[0]
    cols = np.atleast_1d(np.asarray(days, np.int64))
    series = np.repeat(np.arange(n), cols.size)
    flat = recent_features_at(sales, series, np.tile(cols, n))
    return flat.reshape(n, cols.size, len(RECENT_COLUMNS))


def recent_features_at(sales: np.ndarray, series: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Features of day column ``days[k]`` of series ``series[k]``: float32 ``(k, columns)``."""
    y = np.asarray(sales, np.float64)
    rows = np.asarray(series, np.int64)
    cols = np.asarray(days, np.int64)
    known = np.isfinite(y)
    pad = np.zeros((y.shape[0], 1))
    csum = np.concatenate([pad, np.cumsum(np.where(known, y, 0.0), axis=1)], axis=1)
    cnt = np.concatenate([pad, np.cumsum(known, axis=1, dtype=np.float64)], axis=1)

    def window_mean(end: np.ndarray, w: int) -> np.ndarray:
        start = np.maximum(end - w, 0)
        k = cnt[rows, end] - cnt[rows, start]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(k > 0, (csum[rows, end] - csum[rows, start]) / k, np.nan)

    out = np.full((rows.size, len(RECENT_COLUMNS)), np.nan, np.float32)
    for j, w in enumerate(RECENT_WINDOWS):
        out[:, j] = window_mean(cols, w)
    out[:, -1] = np.where(cols - 13 >= 0, window_mean(np.maximum(cols - 6, 0), 7), np.nan)
    return out


def origin_features(
    sales: np.ndarray, series: np.ndarray, days: np.ndarray, ahead: np.ndarray
) -> np.ndarray:
    """Recent features of day column ``days[k]`` of series ``series[k]`` as known at the origin
    ``ahead[k]`` days before it: float32 ``(k, columns)``. ``ahead`` 1 is
    :func:`recent_features_at`; windows before column 0 are empty (NaN)."""
    at = np.maximum(np.asarray(days, np.int64) - np.asarray(ahead, np.int64) + 1, 0)
    return recent_features_at(sales, series, at)


def grid_position(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's series index and day column, and the launched-sales matrix they index, of a
    complete series x day grid in any row order (``id, d, sales, is_launched``)."""
    pos = frame.select(
        (pl.col("id").rank("dense") - 1).cast(pl.Int64).alias("series"),
        (pl.col("d") - pl.col("d").min()).cast(pl.Int64).alias("day"),
        pl.when(pl.col("is_launched")).then(pl.col("sales")).cast(pl.Float64).alias("y"),
    )
    series, day = pos["series"].to_numpy(), pos["day"].to_numpy()
    y = np.full((int(series.max()) + 1, int(day.max()) + 1), np.nan)
    y[series, day] = pos["y"].fill_null(np.nan).to_numpy()
    return series, day, y


def sales_matrix(frame: pl.DataFrame) -> np.ndarray:
    """``(series, days)`` launched sales of a complete grid sorted by ``id, d`` (NaN otherwise)."""
    n = frame.get_column("id").n_unique()
    if n == 0 or frame.height % n:
        raise ValueError("recent features need a complete series x day grid")
    y = frame.select(
        pl.when(pl.col("is_launched")).then(pl.col("sales")).cast(pl.Float64).fill_null(np.nan)
    ).to_series()
    return y.to_numpy().reshape(n, frame.height // n)


def sorted_grid(frame: pl.DataFrame, day: str = "d") -> pl.DataFrame:
    """``frame`` as it is (no copy) when each series' rows are one run of increasing days, else
    sorted by ``id, day``."""
    new_run = (pl.col("id") != pl.col("id").shift()).fill_null(True)
    runs, ids, increasing = frame.select(
        new_run.sum().alias("runs"),
        pl.col("id").n_unique().alias("ids"),
        (new_run | (pl.col(day).diff() > 0)).all().alias("increasing"),
    ).row(0)
    return frame if runs == ids and increasing else frame.sort("id", day)


def with_recent_features(frame: pl.DataFrame, day: str = "d") -> pl.DataFrame:
    """``frame`` (a complete series x day grid with ``id, sales, is_launched`` and the ``day``
    column) in series order, plus the recent features computed from its actual sales."""
    frame = sorted_grid(frame, day)
    y = sales_matrix(frame)
    feats = recent_features(y, np.arange(y.shape[1]))
    flat = feats.reshape(-1, len(RECENT_COLUMNS))
    return frame.with_columns(
        pl.Series(name, flat[:, j], dtype=pl.Float32, nan_to_null=True)
        for j, name in enumerate(RECENT_COLUMNS)
    )
