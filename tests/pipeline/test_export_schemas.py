"""The export schemas accept contract-shaped frames and name file, column and rows otherwise."""

import datetime as dt

import polars as pl
import pytest

from forecasting_assets.contracts import BACKTEST_METRICS_FILE, FORECASTS_FILE, INVENTORY_PLAN_FILE
from forecasting_assets.export_schemas import ExportSchemaError, validate_export
from forecasting_assets.inventory import plan_inventory


def forecasts() -> pl.DataFrame:
    days = [dt.date(2016, 5, 23) + dt.timedelta(days=i) for i in range(3)]
    return pl.DataFrame(
        {
            "id": ["FOODS_1_001_CA_1"] * 3 + ["FOODS_1_002_CA_1"] * 3,
            "item_id": ["FOODS_1_001"] * 3 + ["FOODS_1_002"] * 3,
            "store_id": ["CA_1"] * 6,
            "date": days * 2,
            "predicted_sales": [1.0, 2.0, 0.0, 3.5, 0.2, 1.1],
            "lower": [0.0] * 6,
            "upper": [3.0, 4.0, 1.0, 6.0, 1.0, 2.0],
            "q500": [1.0, 2.0, 0.0, 3.0, 0.0, 1.0],
            "model_version": ["7"] * 6,
        }
    )


def metrics() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["lightgbm", "lightgbm", "seasonal_naive"],
            "fold": pl.Series([1, 1, 1], dtype=pl.Int32),
            "level": ["all", "item_store", "all"],
            "wrmsse": [0.6, float("nan"), 0.9],
            "mae": [1.0, 1.2, None],
            "rmse": [1.5, 1.7, 2.0],
            "bias": [-0.1, 0.2, 0.0],
        }
    )


def plan() -> pl.DataFrame:
    rows = pl.DataFrame(
        {
            "id": ["FOODS_1_001_CA_1", "FOODS_1_002_CA_1"],
            "item_id": ["FOODS_1_001", "FOODS_1_002"],
            "store_id": ["CA_1", "CA_1"],
            "demand_class": ["smooth", "lumpy"],
            "mean_daily_demand": [2.0, 0.3],
            "dispersion": [1.0, 2.5],
            "unit_price": [3.0, 9.5],
        }
    )
    return plan_inventory(rows)


def test_valid_exports_pass_unchanged() -> None:
    for name, frame in [
        (FORECASTS_FILE, forecasts()),
        (BACKTEST_METRICS_FILE, metrics()),
        (INVENTORY_PLAN_FILE, plan()),
    ]:
        assert validate_export(name, frame).equals(frame)


@pytest.mark.parametrize(
    ("name", "frame", "expected"),
    [
        (
            FORECASTS_FILE,
            forecasts().with_columns(pl.Series("predicted_sales", [1.0, -2.0, 0, 3, 0, 1])),
            ["'predicted_sales'", "rows [1]"],
        ),
        (FORECASTS_FILE, forecasts().drop("lower"), ["lower"]),
        (FORECASTS_FILE, pl.concat([forecasts(), forecasts().head(1)]), ["uniqueness"]),
        (
            FORECASTS_FILE,
            forecasts().with_columns(pl.Series("q500", [0.0, 0, 0, 0, 0, -1])),
            ["'q500'", "rows [5]"],
        ),
        (FORECASTS_FILE, forecasts().with_columns(pl.col("date").cast(pl.String)), ["'date'"]),
        (BACKTEST_METRICS_FILE, metrics().with_columns(pl.lit(-1.0).alias("rmse")), ["'rmse'"]),
        (
            INVENTORY_PLAN_FILE,
            plan().with_columns(pl.lit("sporadic").alias("demand_class")),
            ["'demand_class'"],
        ),
        (
            INVENTORY_PLAN_FILE,
            plan().with_columns(pl.lit(1.5).alias("service_level")),
            ["'service_level'"],
        ),
        (
            INVENTORY_PLAN_FILE,
            plan().with_columns(pl.lit(0.0).alias("order_up_to")),
            ["order_up_to_covers_reorder_point"],
        ),
        (INVENTORY_PLAN_FILE, pl.concat([plan(), plan().head(1)]), ["'id'"]),
    ],
)
def test_bad_exports_name_file_column_and_rows(
    name: str, frame: pl.DataFrame, expected: list[str]
) -> None:
    with pytest.raises(ExportSchemaError) as info:
        validate_export(name, frame)
    message = str(info.value)
    assert message.startswith(name)
    for part in expected:
        assert part in message, message
