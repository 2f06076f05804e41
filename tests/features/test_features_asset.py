"""The Dagster ``features`` asset and its checks, called directly on small data."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecasting_assets.defs.assets.features import FeaturesConfig, features
from forecasting_assets.defs.checks import (
    FEATURE_CHECKS,
    features_horizon_direct_inputs,
    features_rows_match_sales_long,
    features_schema_complete,
)
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.features import build_features, feature_columns
from forecasting_assets.features.checks import check_horizon_features
from forecasting_assets.features.columns import lag_name
from forecasting_assets.m5 import readers
from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers


@pytest.fixture(scope="module")
def sales_long(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """sales_long from the generator and the transform (2 stores, 21 series, 200 days)."""
    from forecasting_assets.m5.generator import generate_m5

    folder = tmp_path_factory.mktemp("raw")
    paths = generate_m5(folder, n_stores=2, items_per_dept=2, n_days=200, seed=3)
    calendar = calendar_with_day_numbers(readers.read_calendar(paths["calendar"]))
    return build_sales_long(
        calendar, readers.read_sales(paths["sales"]), readers.read_prices(paths["prices"])
    )


def run_features(config: FeaturesConfig, sales_long: pl.DataFrame) -> dg.MaterializeResult:
    return features(
        context=dg.build_asset_context(),
        config=config,
        sales_long=sales_long.lazy(),
        io_manager=AtomicParquetIOManager(),
        home=PipelineHome(),
    )


def test_asset_writes_table_catalog_and_metadata(home: Path, sales_long: pl.DataFrame) -> None:
    out = run_features(FeaturesConfig(), sales_long)
    assert isinstance(out, dg.MaterializeResult)
    table_path = home / "assets" / "features.parquet"
    assert out.metadata["path"].value == str(table_path)
    table = pl.read_parquet(table_path)
    assert_frame_equal(table, build_features(sales_long))
    assert not (home / "assets" / "features.json").exists(), "one file: the IO manager's"

    catalog = json.loads((home / "exports" / "feature_catalog.json").read_text())
    assert catalog["rows"] == sales_long.height
    assert catalog["feature_columns_direct"] == feature_columns()
    names = [f["name"] for f in catalog["features"]]
    assert set(feature_columns(include_ids=False)) == set(names)
    lag = next(f for f in catalog["features"] if f["name"] == lag_name(28))
    assert lag["family"] == "lag" and lag["version"] and lag["dtype"] == "Int16"
    col = table[lag_name(28)]
    assert lag["stats"]["null_share"] == pytest.approx(col.null_count() / table.height, abs=1e-6)
    assert lag["stats"]["max"] == col.max()
    meta = out.metadata
    assert meta["rows"] == sales_long.height
    assert "feature_catalog" in meta and "feature_catalog_table" in meta
    assert lag_name(28) in meta["feature_catalog_table"].value
    assert not list((home / "assets").glob(".*.tmp")), "no temp files left behind"


def test_asset_config_changes_features(home: Path, sales_long: pl.DataFrame) -> None:
    run_features(FeaturesConfig(direct_lags=[28, 35], windows=[7, 28]), sales_long)
    cols = pl.scan_parquet(home / "assets" / "features.parquet").collect_schema().names()
    assert lag_name(35) in cols and lag_name(30) not in cols and lag_name(7) not in cols


def test_checks_pass_on_good_table_and_fail_on_bad(sales_long: pl.DataFrame) -> None:
    table = build_features(sales_long).lazy()
    ok = features_rows_match_sales_long(features=table, sales_long=sales_long.lazy())
    assert ok.passed
    assert features_horizon_direct_inputs(features=table).passed
    assert features_schema_complete(features=table).passed

    short = features_rows_match_sales_long(
        features=table.slice(0, 100), sales_long=sales_long.lazy()
    )
    assert not short.passed
    last = int(sales_long.filter(pl.col("sales").is_not_null())["d"].max())
    broken = table.with_columns(
        pl.when(pl.col("d") > last).then(None).otherwise(pl.col(lag_name(30))).alias(lag_name(30))
    )
    outcome = check_horizon_features(broken)
    assert not outcome.passed and lag_name(30) in outcome.metadata["unexpected_nulls"]
    assert not features_schema_complete(features=table.drop(lag_name(28))).passed


def test_materializes_after_ingest_with_io_manager(home: Path, raw_dir: Path) -> None:
    """ingest -> features through the real IO manager; checks run; downstream can load it."""
    from forecasting_assets.defs.assets import ingest
    from forecasting_assets.defs.resources import M5Source

    assets = [ingest.raw_calendar, ingest.raw_sales, ingest.raw_prices, ingest.sales_long, features]

    @dg.asset(group_name="test")
    def consumer(features: pl.LazyFrame) -> dict:
        return {"rows": features.select(pl.len()).collect().item()}

    result = dg.materialize(
        [*assets, consumer, *FEATURE_CHECKS],
        resources={
            "io_manager": AtomicParquetIOManager(),
            "m5_source": M5Source(raw_dir=str(raw_dir), generate_if_empty=False),
            "home": PipelineHome(),
        },
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    feature_checks = {k: v for k, v in checks.items() if k.startswith("features_")}
    assert feature_checks == {
        "features_rows_match_sales_long": True,
        "features_horizon_direct_inputs": True,
        "features_schema_complete": True,
    }
    sl_rows = (
        pl.scan_parquet(home / "assets" / "sales_long.parquet").select(pl.len()).collect().item()
    )
    assert result.output_for_node("consumer")["rows"] == sl_rows
    assert (home / "exports" / "feature_catalog.json").exists()
