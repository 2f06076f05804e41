"""The history matrix of sales_long: order, launch mask, prices, id filters (Enum or String)."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from forecasting_assets.monitoring.history import history_window, last_history_date


def sales_long(id_dtype: pl.DataType) -> pl.DataFrame:
    ids = ["B_CA_1", "A_CA_1"]
    days = 6
    frame = pl.DataFrame(
        {
            "id": [i for i in ids for _ in range(days + 2)],
            "store_id": ["CA_1"] * (2 * (days + 2)),
            "d": list(range(1, days + 3)) * 2,
            "date": [dt.date(2016, 1, 1) + dt.timedelta(days=k) for k in range(days + 2)] * 2,
            "sales": [1, 2, 3, 4, 5, 6, None, None, 0, 0, 7, 0, 8, 9, None, None],
            "is_launched": [True] * 8 + [False, False, True, True, True, True, True, True],
            "sell_price": [1.0, 1.0, 1.5, 1.5, None, None, 2.0, 2.0] + [3.0] * 8,
        }
    )
    dtype = pl.Enum(ids) if id_dtype == pl.Enum else id_dtype
    return frame.with_columns(pl.col("id").cast(dtype))


@pytest.mark.parametrize("id_dtype", [pl.Enum, pl.String])
def test_history_window(id_dtype: pl.DataType) -> None:
    lf = sales_long(id_dtype).lazy()
    assert last_history_date(lf) == (6, dt.date(2016, 1, 6))
    series, matrix = history_window(lf, 4)
    assert series["id"].to_list() == ["A_CA_1", "B_CA_1"]  # sorted by id
    np.testing.assert_array_equal(matrix[0], [7, 0, 8, 9])
    np.testing.assert_array_equal(matrix[1], [3, 4, 5, 6])
    assert series["unit_price"].to_list() == [3.0, 1.5]  # last known price in the window
    series, matrix = history_window(lf, 6, ids=["A_CA_1"])
    assert series["id"].to_list() == ["A_CA_1"]
    np.testing.assert_array_equal(matrix[0], [np.nan, np.nan, 7, 0, 8, 9])  # before launch: NaN


def test_no_known_sales_is_an_error() -> None:
    lf = sales_long(pl.String).with_columns(pl.lit(None, pl.Int32).alias("sales")).lazy()
    with pytest.raises(ValueError, match="no day with known sales"):
        last_history_date(lf)
