"""The wide -> long transform against hand-computed cases and a straightforward reference."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from forecasting_assets.m5 import readers
from forecasting_assets.m5.transform import (
    build_sales_long,
    calendar_with_day_numbers,
    sales_long_lazy,
)
from forecasting_assets.settings import atomic_write


def tiny_inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    days = 7  # 5 history days + 2 horizon days
    calendar = pl.DataFrame(
        {
            "date": [dt.date(2011, 1, 29) + dt.timedelta(days=i) for i in range(days)],
            "wm_yr_wk": [11101] * 7,
            "weekday": [
                "Saturday",
                "Sunday",
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
            ],
            "wday": list(range(1, 8)),
            "month": [1, 1, 1, 2, 2, 2, 2],
            "year": [2011] * 7,
            "d": [f"d_{i + 1}" for i in range(days)],
            "event_name_1": [None, "SuperBowl", None, None, None, None, None],
            "event_type_1": [None, "Sporting", None, None, None, None, None],
            "event_name_2": [None] * 7,
            "event_type_2": [None] * 7,
            "snap_CA": [1, 0, 0, 0, 0, 0, 1],
            "snap_TX": [0, 1, 0, 0, 0, 0, 0],
            "snap_WI": [0] * 7,
        },
        schema_overrides={
            "wm_yr_wk": pl.Int16,
            "wday": pl.Int8,
            "month": pl.Int8,
            "year": pl.Int16,
            "event_name_2": pl.String,
            "event_type_2": pl.String,
            "snap_CA": pl.Int8,
            "snap_TX": pl.Int8,
            "snap_WI": pl.Int8,
        },
    )
    calendar = calendar.with_columns(
        pl.when(pl.col("wday") >= 4).then(11102).otherwise(11101).cast(pl.Int16).alias("wm_yr_wk")
    )
    sales = pl.DataFrame(
        {
            "id": ["FOODS_1_001_CA_1_evaluation", "HOBBIES_1_002_TX_1_evaluation"],
            "item_id": ["FOODS_1_001", "HOBBIES_1_002"],
            "dept_id": ["FOODS_1", "HOBBIES_1"],
            "cat_id": ["FOODS", "HOBBIES"],
            "store_id": ["CA_1", "TX_1"],
            "state_id": ["CA", "TX"],
            "d_1": [3, 0],
            "d_2": [0, 0],
            "d_3": [1, 0],
            "d_4": [0, 2],
            "d_5": [2, 0],
        },
        schema_overrides={f"d_{i}": pl.Int32 for i in range(1, 6)},
    )
    prices = pl.DataFrame(
        {
            "store_id": ["CA_1", "CA_1", "TX_1"],
            "item_id": ["FOODS_1_001", "FOODS_1_001", "HOBBIES_1_002"],
            "wm_yr_wk": [11101, 11102, 11102],
            "sell_price": [2.5, 2.0, 9.97],
        },
        schema_overrides={"wm_yr_wk": pl.Int16, "sell_price": pl.Float32},
    )
    return calendar_with_day_numbers(calendar), sales, prices


def test_long_grid_by_hand() -> None:
    calendar, sales, prices = tiny_inputs()
    long = build_sales_long(calendar, sales, prices, horizon=2)
    assert long.height == 2 * 7
    assert long["id"].cast(pl.String).to_list()[:1] == ["FOODS_1_001_CA_1"]
    a = long.filter(pl.col("id") == "FOODS_1_001_CA_1")
    b = long.filter(pl.col("id") == "HOBBIES_1_002_TX_1")
    assert a["sales"].to_list() == [3, 0, 1, 0, 2, None, None]
    assert a["d"].to_list() == list(range(1, 8))
    assert a["is_launched"].all()
    # leading zeros before the first sale on d_4 are not demand; the horizon inherits "launched"
    assert b["is_launched"].to_list() == [False, False, False, True, True, True, True]
    assert a["sell_price"].to_list() == pytest.approx([2.5, 2.5, 2.5, 2.0, 2.0, 2.0, 2.0])
    assert b["sell_price"].to_list()[:3] == [None, None, None]  # not on sale before week 11102
    assert a["snap"].to_list() == [1, 0, 0, 0, 0, 0, 1]  # CA's SNAP days
    assert b["snap"].to_list() == [0, 1, 0, 0, 0, 0, 0]  # TX's
    assert a["event_name_1"].cast(pl.String).to_list()[1] == "SuperBowl"
    assert long.schema["store_id"] == pl.Enum(["CA_1", "TX_1"])


def reference_long(
    calendar: pl.DataFrame, sales: pl.DataFrame, prices: pl.DataFrame, horizon: int
) -> pl.DataFrame:
    """The obvious unpivot + joins, to compare the fast path with."""
    days = [c for c in sales.columns if c.startswith("d_")]
    last = int(days[-1][2:])
    ids = sales.select(
        pl.col("id").str.replace(r"_evaluation$", ""), "store_id", "item_id", "state_id"
    )
    future = ids.join(pl.DataFrame({"d": list(range(last + 1, last + horizon + 1))}), how="cross")
    hist = (
        sales.with_columns(pl.col("id").str.replace(r"_evaluation$", ""))
        .unpivot(
            index=["id", "store_id", "item_id", "state_id"],
            on=days,
            variable_name="d",
            value_name="sales",
        )
        .with_columns(pl.col("d").str.strip_prefix("d_").cast(pl.Int64))
    )
    grid = pl.concat(
        [hist, future.with_columns(pl.lit(None, pl.Int32).alias("sales"))], how="diagonal_relaxed"
    )
    grid = grid.join(calendar.with_columns(pl.col("d").cast(pl.Int64)), on="d").join(
        prices, on=["store_id", "item_id", "wm_yr_wk"], how="left"
    )
    first_sale = hist.filter(pl.col("sales") > 0).group_by("id").agg(pl.col("d").min().alias("f"))
    return (
        grid.join(first_sale, on="id", how="left")
        .select(
            "id",
            "d",
            "sales",
            "sell_price",
            pl.when(pl.col("state_id") == "CA")
            .then("snap_CA")
            .when(pl.col("state_id") == "TX")
            .then("snap_TX")
            .otherwise("snap_WI")
            .alias("snap"),
            (pl.col("d") >= pl.col("f")).fill_null(False).alias("is_launched"),
        )
        .sort("id", "d")
    )


def test_matches_reference_on_generated_data(tiny_raw_source: Path) -> None:
    files = readers.find_m5_files(tiny_raw_source)
    calendar = calendar_with_day_numbers(readers.read_calendar(files["calendar"]))
    sales, prices = readers.read_sales(files["sales"]), readers.read_prices(files["prices"])
    fast = (
        build_sales_long(calendar, sales, prices, horizon=28)
        .select(
            pl.col("id").cast(pl.String),
            pl.col("d").cast(pl.Int64),
            "sales",
            "sell_price",
            "snap",
            "is_launched",
        )
        .sort("id", "d")
    )
    expected = reference_long(calendar, sales, prices, 28).with_columns(
        pl.col("snap").cast(pl.Int8)
    )
    assert fast.equals(expected)
    assert (~fast["is_launched"]).sum() > 0  # the generator launches some items late


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_chunked_lazy_grid_equals_in_memory_grid(tiny_raw_source: Path, tmp_path: Path) -> None:
    files = readers.find_m5_files(tiny_raw_source)
    calendar = calendar_with_day_numbers(readers.read_calendar(files["calendar"]))
    sales, prices = readers.read_sales(files["sales"]), readers.read_prices(files["prices"])
    whole = build_sales_long(calendar, sales, prices)
    lazy = sales_long_lazy(calendar, sales, prices, chunk_rows=1_000)  # 3 series per chunk
    lazy.sink_parquet(tmp_path / "long.parquet")
    assert pl.read_parquet(tmp_path / "long.parquet").equals(whole)
    assert lazy.collect().equals(whole)  # the source can be read more than once
    some = lazy.select("id", "sales").filter(pl.col("sales") > 3).head(5).collect()
    assert some.equals(whole.select("id", "sales").filter(pl.col("sales") > 3).head(5))
    # a pushed-down predicate on a column that is not selected still applies
    day5 = lazy.filter(pl.col("d") == 5).select("sales").collect()
    assert day5.equals(whole.filter(pl.col("d") == 5).select("sales"))
