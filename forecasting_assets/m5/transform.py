"""Wide M5 files -> the long daily grid (``sales_long``) every later stage reads.

The grid is built with numpy gathers instead of an unpivot + joins: the wide sales matrix
flattened row-major is already sorted by series then day, calendar fields are tiled per
series, and prices are looked up in a (series × week) matrix. It is produced in chunks of
series and exposed as a lazy polars source, so writing full M5 (60 M rows) streams chunk by
chunk to Parquet instead of holding the whole grid in memory.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from forecasting_assets.lazy_source import lazy_from_batches
from forecasting_assets.m5.readers import day_number
from forecasting_assets.m5.validation import day_columns, strip_suffix

HIERARCHY = ("item_id", "dept_id", "cat_id", "store_id", "state_id")
EVENT_COLUMNS = ("event_name_1", "event_type_1", "event_name_2", "event_type_2")
CALENDAR_FIELDS = ("date", "wm_yr_wk", "wday", "month", "year")
COLUMNS = (
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
CHUNK_ROWS = 4_000_000
"""Rows per chunk (whole series only): bounds the memory of building the grid."""


def last_history_day(sales_long: pl.LazyFrame | pl.DataFrame) -> int:
    """Last day ``d`` with known sales (the forecast origin of the horizon)."""
    value = sales_long.lazy().filter(pl.col("sales").is_not_null()).select(pl.col("d").max())
    out = value.collect().item()
    if out is None:
        raise ValueError("sales_long has no day with known sales")
    return int(out)


def calendar_with_day_numbers(calendar: pl.DataFrame) -> pl.DataFrame:
    """Replace the ``d_N`` labels by the integer N (Int16) and sort by day."""
    return calendar.with_columns(pl.col("d").str.strip_prefix("d_").cast(pl.Int16)).sort("d")


def series_frame(sales: pl.DataFrame) -> pl.DataFrame:
    """One row per series: id (suffix stripped) and hierarchy as Enums in file order."""
    ids = sales.select(strip_suffix(pl.col("id")).alias("id"), *HIERARCHY)
    return ids.with_columns(
        pl.col(c).cast(pl.Enum(ids[c].unique(maintain_order=True).to_list())) for c in ids.columns
    )


@dataclass(frozen=True)
class _Grid:
    """Everything shared by the chunks: series, calendar part, prices by week."""

    series: pl.DataFrame
    calendar: pl.DataFrame  # one row per grid day, output dtypes
    snap: dict[str, np.ndarray]  # state -> SNAP flag per grid day
    price_by_week: np.ndarray  # (series × week) float32, NaN = not on sale
    day_week: np.ndarray  # week position of each grid day
    day_columns: list[str]
    n_history: int


def _grid(calendar: pl.DataFrame, sales: pl.DataFrame, prices: pl.DataFrame, horizon: int) -> _Grid:
    days = day_columns(sales)
    first_day, last_day = day_number(days[0]), day_number(days[-1])
    cal = calendar.filter(pl.col("d").is_between(first_day, last_day + horizon)).sort("d")
    n_days = last_day + horizon - first_day + 1
    if cal.height != n_days:
        raise ValueError(
            f"calendar has {cal.height} of the {n_days} days d_{first_day}..d_{last_day + horizon}"
        )
    series = series_frame(sales)
    day_weeks = cal["wm_yr_wk"].to_numpy()
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
    price_by_week = np.full((series.height, len(weeks)), np.nan, dtype=np.float32)
    price_by_week[
        located["series_index"].to_numpy(), np.searchsorted(weeks, located["wm_yr_wk"].to_numpy())
    ] = located["sell_price"].to_numpy()
    calendar_part = cal.select(
        pl.col("d").cast(pl.Int16),
        *CALENDAR_FIELDS,
        *[
            pl.col(c).cast(pl.Enum(cal[c].drop_nulls().unique().sort().to_list()))
            for c in EVENT_COLUMNS
        ],
    )
    states = series["state_id"].cast(pl.String).unique().to_list()
    return _Grid(
        series=series,
        calendar=calendar_part,
        snap={s: cal[f"snap_{s}"].to_numpy().astype(np.int8) for s in states},
        price_by_week=price_by_week,
        day_week=np.searchsorted(weeks, day_weeks),
        day_columns=days,
        n_history=len(days),
    )


def _chunk(grid: _Grid, sales: pl.DataFrame, start: int, stop: int) -> pl.DataFrame:
    """The long rows of series ``start..stop`` (whole series, sorted by series then day)."""
    n_series, n_days = stop - start, grid.calendar.height
    history = sales.slice(start, n_series).select(grid.day_columns).to_numpy()
    sold = history > 0
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), grid.n_history)
    day_index = np.arange(n_days, dtype=np.uint32)
    values = np.zeros((n_series, n_days), dtype=np.int32)
    values[:, : grid.n_history] = history
    states = grid.series["state_id"].slice(start, n_series).cast(pl.String).to_list()
    snap = np.stack([grid.snap[s] for s in states]) if n_series else np.zeros((0, n_days), np.int8)
    prices = grid.price_by_week[start:stop][:, grid.day_week]
    frame = pl.concat(
        [
            grid.series.slice(start, n_series).select(
                pl.all().gather(pl.Series(np.repeat(np.arange(n_series, dtype=np.uint32), n_days)))
            ),
            grid.calendar[np.tile(day_index, n_series)],
            pl.DataFrame(
                {
                    "snap": snap.reshape(-1),
                    "sell_price": pl.Series(prices.reshape(-1), nan_to_null=True),
                    "sales": values.reshape(-1),
                    "is_launched": (day_index[None, :] >= first_sale[:, None]).reshape(-1),
                }
            ),
        ],
        how="horizontal",
    )
    future = np.tile(day_index >= grid.n_history, n_series)
    return frame.with_columns(
        pl.when(pl.Series(future)).then(None).otherwise(pl.col("sales")).alias("sales")
    ).select(COLUMNS)


def sales_long_chunks(
    calendar: pl.DataFrame,
    sales: pl.DataFrame,
    prices: pl.DataFrame,
    horizon: int = 28,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[pl.Schema, Callable[[], Iterator[pl.DataFrame]]]:
    """The grid's schema and a function iterating over its rows in chunks of whole series."""
    grid = _grid(calendar, sales, prices, horizon)
    per_chunk = max(1, chunk_rows // grid.calendar.height)
    schema = _chunk(grid, sales, 0, 0).schema

    def chunks() -> Iterator[pl.DataFrame]:
        for start in range(0, grid.series.height, per_chunk):
            yield _chunk(grid, sales, start, min(start + per_chunk, grid.series.height))

    return schema, chunks


def sales_long_lazy(
    calendar: pl.DataFrame,
    sales: pl.DataFrame,
    prices: pl.DataFrame,
    horizon: int = 28,
    chunk_rows: int = CHUNK_ROWS,
) -> pl.LazyFrame:
    """The grid as a lazy source: ``.sink_parquet`` streams it chunk by chunk.

    ``calendar`` has integer ``d`` (see :func:`calendar_with_day_numbers`). Future rows have
    ``sales`` null. ``is_launched`` is False before a series' first non-zero sale, so leading
    zeros are not mistaken for demand. ``sell_price`` is null in weeks without a price row.
    """
    schema, chunks = sales_long_chunks(calendar, sales, prices, horizon, chunk_rows)
    return lazy_from_batches(chunks, schema, "sales_long")


def build_sales_long(
    calendar: pl.DataFrame, sales: pl.DataFrame, prices: pl.DataFrame, horizon: int = 28
) -> pl.DataFrame:
    """The whole grid in memory (small data, tests); see :func:`sales_long_lazy`."""
    schema, chunks = sales_long_chunks(calendar, sales, prices, horizon)
    return pl.concat([pl.DataFrame(schema=schema), *chunks()])
