"""Wide M5 files -> the long daily grid (``sales_long``) every later stage reads.

The grid is built with numpy gathers instead of an unpivot + joins: the wide sales matrix
flattened row-major is already sorted by series then day, calendar fields are tiled per
series, and prices are looked up in a (series × week) matrix. At full M5 scale this is a few
seconds and a few GB, where a pandas melt + merge takes tens of GB.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting_assets.m5.readers import day_number
from forecasting_assets.m5.validation import day_columns, strip_suffix

HIERARCHY = ("item_id", "dept_id", "cat_id", "store_id", "state_id")
EVENT_COLUMNS = ("event_name_1", "event_type_1", "event_name_2", "event_type_2")
CALENDAR_FIELDS = ("date", "wm_yr_wk", "wday", "month", "year")


def calendar_with_day_numbers(calendar: pl.DataFrame) -> pl.DataFrame:
    """Replace the ``d_N`` labels by the integer N (Int16) and sort by day."""
    return calendar.with_columns(pl.col("d").str.strip_prefix("d_").cast(pl.Int16)).sort("d")


def series_frame(sales: pl.DataFrame) -> pl.DataFrame:
    """One row per series: id (suffix stripped) and hierarchy as Enums in file order."""
    ids = sales.select(strip_suffix(pl.col("id")).alias("id"), *HIERARCHY)
    return ids.with_columns(
        pl.col(c).cast(pl.Enum(ids[c].unique(maintain_order=True).to_list())) for c in ids.columns
    )


def build_sales_long(
    calendar: pl.DataFrame, sales: pl.DataFrame, prices: pl.DataFrame, horizon: int = 28
) -> pl.DataFrame:
    """Long grid of every series × (history days + ``horizon`` future days).

    ``calendar`` has integer ``d`` (see :func:`calendar_with_day_numbers`). Future rows have
    ``sales`` null. ``is_launched`` is False before a series' first non-zero sale, so leading
    zeros are not mistaken for demand. ``sell_price`` is null in weeks without a price row.
    """
    days = day_columns(sales)
    first_day, last_day = day_number(days[0]), day_number(days[-1])
    day_numbers = np.arange(first_day, last_day + horizon + 1, dtype=np.int16)
    n_days, n_hist = len(day_numbers), len(days)
    series = series_frame(sales)
    n_series = series.height

    cal = calendar.filter(pl.col("d").is_between(first_day, last_day + horizon)).sort("d")
    if cal.height != n_days:
        raise ValueError(
            f"calendar has {cal.height} of the {n_days} days d_{first_day}..d_{last_day + horizon}"
        )

    history = sales.select(days).to_numpy().astype(np.int32, copy=False)
    sold = history > 0
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), n_hist)
    day_index = np.arange(n_days)
    launched = day_index[None, :] >= first_sale[:, None]
    values = np.zeros((n_series, n_days), dtype=np.int32)
    values[:, :n_hist] = history
    del history, sold

    states = series["state_id"].cast(pl.String).to_list()
    snap_by_state = {s: cal[f"snap_{s}"].to_numpy().astype(np.int8) for s in set(states)}
    snap = np.stack([snap_by_state[s] for s in states]) if n_series else np.zeros((0, n_days))

    price_matrix = _price_matrix(series, prices, cal["wm_yr_wk"].to_numpy())

    series_index = np.repeat(np.arange(n_series, dtype=np.int64), n_days)
    day_tile = np.tile(day_index, n_series)
    is_future = pl.Series("is_future", np.tile(day_index >= n_hist, n_series))

    calendar_part = cal.select(
        pl.col("d").cast(pl.Int16),
        *CALENDAR_FIELDS,
        *[
            pl.col(c).cast(pl.Enum(cal[c].drop_nulls().unique().sort().to_list()))
            for c in EVENT_COLUMNS
        ],
    )[day_tile]
    frame = pl.concat(
        [
            series[series_index],
            calendar_part,
            pl.DataFrame(
                {
                    "snap": snap.reshape(-1),
                    "sell_price": pl.Series(price_matrix.reshape(-1), nan_to_null=True),
                    "sales": values.reshape(-1),
                    "is_launched": launched.reshape(-1),
                }
            ),
        ],
        how="horizontal",
    )
    return frame.with_columns(
        pl.when(is_future).then(None).otherwise(pl.col("sales")).alias("sales")
    ).select(
        "id",
        *HIERARCHY,
        "d",
        *CALENDAR_FIELDS,
        *EVENT_COLUMNS,
        "snap",
        "sell_price",
        "sales",
        "is_launched",
    )


def _price_matrix(series: pl.DataFrame, prices: pl.DataFrame, day_weeks: np.ndarray) -> np.ndarray:
    """(series × day) float32 prices, NaN where the item was not on sale that week."""
    weeks = np.unique(day_weeks)
    keys = series.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("series_index"),
        pl.col("store_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
    )
    located = (
        prices.filter(pl.col("wm_yr_wk").is_in(weeks.tolist()))
        .join(keys, on=["store_id", "item_id"], how="inner")
        .select("series_index", "wm_yr_wk", "sell_price")
    )
    matrix = np.full((series.height, len(weeks)), np.nan, dtype=np.float32)
    week_pos = np.searchsorted(weeks, located["wm_yr_wk"].to_numpy())
    matrix[located["series_index"].to_numpy(), week_pos] = located["sell_price"].to_numpy()
    return matrix[:, np.searchsorted(weeks, day_weeks)]
