"""The last days of ``sales_long`` as a (series × day) matrix, and id filters on Enum codes."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from forecasting_assets.m5.transform import last_history_day

ID_COLS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")


def last_history_date(sales_long: pl.LazyFrame) -> tuple[int, date]:
    """(d, date) of the last day with known sales."""
    last_d = last_history_day(sales_long)
    day = sales_long.filter(pl.col("d") == last_d).select(pl.col("date").first()).collect()
    return last_d, day.item()


def id_in(dtype: pl.DataType, ids: list[str]) -> pl.Expr:
    """``id`` is one of ``ids`` (compared on the Enum's codes: no per-row string cast)."""
    if isinstance(dtype, pl.Enum):
        wanted = pl.Series(ids, dtype=pl.String).cast(dtype, strict=False).drop_nulls()
        return pl.col("id").is_in(wanted.implode())
    return pl.col("id").cast(pl.String).is_in(pl.Series(ids, dtype=pl.String).implode())


def history_window(
    sales_long: pl.LazyFrame, days: int, ids: list[str] | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """Last ``days`` history days of every series (or of ``ids``) as a matrix.

    Returns ``(series, matrix)``: ``series`` has one row per series, sorted by id (hierarchy ids
    as strings, ``unit_price`` = last known price in the window); ``matrix`` ``(n, days)`` holds
    sales with NaN before launch or where a day is missing. The hierarchy is read on the last
    history day (``sales_long`` is a complete series × day grid).
    """
    last_d = last_history_day(sales_long)
    first_d = last_d - days + 1
    schema = sales_long.collect_schema()
    names = schema.names()
    hier = [c for c in ID_COLS if c in names]
    lf = sales_long.filter(pl.col("d").is_between(first_d, last_d) & pl.col("sales").is_not_null())
    if ids is not None:
        lf = lf.filter(id_in(schema["id"], ids))
    launched = pl.col("is_launched") if "is_launched" in names else pl.lit(True)
    price = pl.col("sell_price") if "sell_price" in names else pl.lit(None, pl.Float32)
    rows = lf.select(
        *hier,
        (pl.col("d").cast(pl.Int32) - first_d).alias("_c"),
        pl.when(launched).then(pl.col("sales").cast(pl.Float64)).alias("sales"),
        price.cast(pl.Float64).alias("sell_price"),
    ).collect()
    keys = rows.filter(pl.col("_c") == days - 1).select(hier)
    order = keys.with_columns(pl.col("id").cast(pl.String).alias("_key")).sort("_key")
    r = _row_of(rows, order)
    ok = r >= 0
    c = rows["_c"].to_numpy()[ok]
    matrix = np.full((order.height, days), np.nan)
    matrix[r[ok], c] = rows["sales"].fill_null(np.nan).to_numpy()[ok]
    prices = np.full((order.height, days), np.nan)
    prices[r[ok], c] = rows["sell_price"].fill_null(np.nan).to_numpy()[ok]
    known = ~np.isnan(prices)
    last = days - 1 - np.argmax(known[:, ::-1], axis=1)
    unit_price = np.where(known.any(axis=1), prices[np.arange(order.height), last], np.nan)
    series = order.select(pl.col(h).cast(pl.String) for h in hier).with_columns(
        pl.Series("unit_price", unit_price).fill_nan(None)
    )
    return series, matrix


def _row_of(rows: pl.DataFrame, order: pl.DataFrame) -> np.ndarray:
    """Position of every row's id in ``order`` (-1 when absent)."""
    if isinstance(rows.schema["id"], pl.Enum | pl.Categorical):
        codes = order["id"].to_physical().to_numpy().astype(np.int64)
        lookup = np.full(int(codes.max()) + 2 if codes.size else 1, -1, dtype=np.int64)
        lookup[codes] = np.arange(codes.size)
        physical = rows["id"].to_physical().to_numpy().astype(np.int64)
        return lookup[np.minimum(physical, lookup.size - 1)]
    index = order.select(pl.col("id").cast(rows.schema["id"])).with_row_index("_r")
    r = rows.select("id").join(index, on="id", how="left", maintain_order="left")["_r"]
    return r.fill_null(-1).to_numpy().astype(np.int64)
