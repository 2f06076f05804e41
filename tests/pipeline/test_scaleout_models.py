"""The demand model trained as store partitions (scale-out) equals the one trained in one process."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from forecasting_assets.defs.assets import modeling as assets
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.features.build import build_features
from forecasting_assets.m5.readers import find_m5_files, read_calendar, read_prices, read_sales
from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers
from forecasting_assets.modeling import train
from forecasting_assets.scaleout import STORES
from forecasting_assets.scaleout_models import (
    demand_model_from_partitions,
    store_model_path,
    store_models,
)

pytestmark = pytest.mark.slow

CONFIG = {
    "train_start_d": 1, "num_boost_round": 8, "num_threads": 1, "recent_folds": 2,
    "seasonal_lags": [],
    "extra_params_json": json.dumps({"min_data_in_leaf": 5, "num_leaves": 7, "max_bin": 31}),
}  # fmt: skip
PER_STORE = {"min_store_series": 1}
"""Every store its own member."""
PER_STORE_RECURSIVE = {"part_min_store_series": {"recursive": 1}}
"""A global direct part (trained by ``demand_model``) with per-store recursive parts."""


@pytest.fixture(scope="module")
def tables(tiny_raw_source: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    files = find_m5_files(tiny_raw_source)
    cal = calendar_with_day_numbers(read_calendar(files["calendar"]))  # type: ignore[arg-type]
    sl = build_sales_long(cal, read_sales(files["sales"]), read_prices(files["prices"]), horizon=28)  # type: ignore[arg-type]
    sl = sl.collect() if isinstance(sl, pl.LazyFrame) else sl
    built = build_features(sl)
    return sl, built.collect() if isinstance(built, pl.LazyFrame) else built


def _materialize(home: Path, tables: tuple[pl.DataFrame, pl.DataFrame], scaleout: bool,
                 grouping: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:  # fmt: skip
    monkeypatch.setenv("FORECASTING_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    sl, feats = tables

    @dg.asset(name="sales_long")
    def sales_long_stub() -> pl.DataFrame:
        return sl

    @dg.asset(name="features")
    def features_stub() -> pl.DataFrame:
        return feats

    resources = {
        "io_manager": AtomicParquetIOManager(),
        "mlflow": MLflowResource(),
        "home": PipelineHome(),
    }
    config = assets.DemandModelConfig(**CONFIG, **grouping)
    model = assets.demand_model
    instance = dg.DagsterInstance.ephemeral()
    if scaleout:
        stores = sl["store_id"].cast(pl.String).unique().sort().to_list()
        instance.add_dynamic_partitions(STORES, stores)
        for store in stores:
            done = dg.materialize([sales_long_stub, features_stub, store_models], instance=instance,
                                  resources=resources, partition_key=store,
                                  run_config=dg.RunConfig({"store_models": config}))  # fmt: skip
            assert done.success and store_model_path(store).exists()
        model = demand_model_from_partitions
    result = dg.materialize(
        [sales_long_stub, features_stub, assets.baselines, model, assets.batch_forecasts],
        instance=instance, resources=resources,
        run_config=dg.RunConfig({"demand_model": config, "baselines": assets.BacktestConfig(
            recent_folds=2, seasonal_lags=[])}),
    )  # fmt: skip
    assert result.success
    return result.output_for_node("batch_forecasts")


@pytest.mark.parametrize(
    ("grouping", "in_demand_model"), [(PER_STORE, []), (PER_STORE_RECURSIVE, ["*"])]
)
def test_store_partitions_give_the_default_runs_forecasts(
    tables: tuple[pl.DataFrame, pl.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grouping: dict[str, object],
    in_demand_model: list[str],
) -> None:
    default = _materialize(tmp_path / "default", tables, False, grouping, monkeypatch)
    trained: list[str] = []
    real = train.train_group

    def spy(*args: object, **kwargs: object) -> train.GroupTraining:
        trained.append(str(args[1]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "train_group", spy)
    import forecasting_assets.modeling.plan as training

    monkeypatch.setattr(training, "train_group", spy)
    scaled = _materialize(tmp_path / "scaleout", tables, True, grouping, monkeypatch)
    # Each store trained once, in its own partition run; demand_model reused them all and
    # trained only the global member, if any.
    stores = tables[0]["store_id"].cast(pl.String).unique().sort().to_list()
    assert sorted(trained) == [*in_demand_model, *stores]
    assert scaled.drop("model_version").equals(default.drop("model_version"))
    assert default.height == 42 * 28
