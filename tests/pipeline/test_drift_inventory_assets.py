"""drift_report and inventory_plan assets called directly on small contract-shaped fixtures."""

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from forecasting_assets.defs import checks
from forecasting_assets.defs.assets.drift import DriftConfig, drift_report
from forecasting_assets.defs.assets.inventory import InventoryConfig, inventory_plan
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.inventory import plan_inventory
from forecasting_assets.inventory.plan import check_plan
from forecasting_assets.monitoring.report import check_drift_report


def run_drift(
    sales_long: pl.DataFrame, features: pl.DataFrame, **cfg: object
) -> dg.MaterializeResult:
    return drift_report(
        context=dg.build_asset_context(),
        config=DriftConfig(**cfg),
        sales_long=sales_long.lazy(),
        features=features.lazy(),
        home=PipelineHome(),
    )


def _meta(value: object) -> object:
    """A metadata entry's raw value (wrapped or not)."""
    return getattr(value, "value", value)


def _no_temp_files(folder: Path) -> bool:
    return not list(folder.rglob("*.tmp"))


def test_drift_report_writes_json_and_archive(
    home: Path,
    small_sales_long: Callable,
    small_features: Callable,
    write_forecasts: Callable,
    write_backtest: Callable,
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    write_backtest(home, 0.8)
    result = run_drift(sales, small_features(sales))
    exports = home / "exports"
    report = json.loads((exports / "drift_report.json").read_text())
    assert {"status", "generated_at", "features", "prediction_drift", "realized_accuracy"} <= set(
        report
    )
    assert report["status"] in ("ok", "warn")
    names = {f["name"] for f in report["features"]}
    assert {"sales_lag_28", "sales_rmean_28_7", "sell_price"} <= names
    assert "month" not in names  # calendar features differ between windows by construction
    assert all(f["psi"] is None or f["psi"] >= 0 for f in report["features"])
    assert report["realized_accuracy"] is None  # nothing forecast earlier has actuals yet
    pred = report["prediction_drift"]
    assert pred["available"] and pred["vs_recent_actuals"]["series"] == 10
    first = sales.filter(pl.col("sales").is_null())["date"].min()
    archived = exports / "forecast_archive" / f"v1_{first}.parquet"
    assert archived.exists()
    sidecar = json.loads(archived.with_suffix(".json").read_text())
    assert sidecar["backtest_wrmsse"] == pytest.approx(0.8)
    assert _meta(result.metadata["status"]) == report["status"]
    assert _no_temp_files(exports)
    assert check_drift_report(exports / "drift_report.json").passed


def test_drift_report_alerts_on_feature_drift(
    home: Path, small_sales_long: Callable, small_features: Callable, write_forecasts: Callable
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    run_drift(sales, small_features(sales, drift_last_days=28))
    report = json.loads((home / "exports" / "drift_report.json").read_text())
    assert report["feature_drift"]["status"] == "alert"
    assert report["status"] == "alert"
    assert report["feature_drift"]["alert_features"] >= 2


def test_prediction_drift_status_from_thresholds(
    home: Path, small_sales_long: Callable, small_features: Callable, write_forecasts: Callable
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1", scale=5.0)
    run_drift(sales, small_features(sales))
    report = json.loads((home / "exports" / "drift_report.json").read_text())
    assert report["prediction_drift"]["status"] == "alert"
    assert report["status"] == "alert"
    run_drift(
        sales, small_features(sales), prediction_change_alert=10.0, prediction_change_warn=10.0
    )
    report = json.loads((home / "exports" / "drift_report.json").read_text())
    assert report["prediction_drift"]["status"] == "ok"


@pytest.mark.parametrize(("scale", "expected"), [(1.0, "ok"), (3.0, "alert")])
def test_realized_accuracy_when_actuals_arrive(
    home: Path,
    scale: float,
    expected: str,
    small_sales_long: Callable,
    small_features: Callable,
    write_forecasts: Callable,
    write_backtest: Callable,
) -> None:
    full = small_sales_long(528)
    old = full.filter(pl.col("d") <= 528).with_columns(
        pl.when(pl.col("d") <= 500).then(pl.col("sales")).alias("sales")
    )
    truth = full.filter(pl.col("d").is_between(501, 528))
    write_backtest(home, 0.8)
    write_forecasts(home, old, "v1", scale=scale, truth=truth)
    run_drift(old, small_features(old))
    # A new sales file with 28 more days arrives, and a new model forecasts the next 28 days.
    write_backtest(home, 0.3)  # the archive keeps the backtest known when v1 was archived
    write_forecasts(home, full, "v2")
    run_drift(full, small_features(full))
    report = json.loads((home / "exports" / "drift_report.json").read_text())
    realized = report["realized_accuracy"]
    assert realized is not None
    assert realized["model_version"] == "v1"
    assert realized["days_with_actuals"] == 28 and realized["series"] == 10
    assert realized["backtest_wrmsse"] == pytest.approx(0.8)
    assert realized["status"] == expected
    if expected == "ok":
        assert realized["realized_wrmsse"] == pytest.approx(0.0, abs=1e-9)
    else:
        assert realized["degradation"] > 0.1
        assert report["status"] == "alert"
    assert report["prediction_drift"]["vs_previous_forecast"]["archive"].startswith("v1_")
    assert len(list((home / "exports" / "forecast_archive").glob("*.parquet"))) == 2


def test_drift_report_check_fails_on_crafted_bad_reports(tmp_path: Path) -> None:
    good = {
        "status": "warn",
        "generated_at": "2026-01-01T00:00:00+00:00",
        "feature_drift": {"status": "warn"},
        "features": [{"name": "a", "psi": 0.2, "status": "warn"}],
        "prediction_drift": {"status": "ok"},
        "realized_accuracy": None,
    }
    path = tmp_path / "drift_report.json"
    path.write_text(json.dumps(good))
    assert check_drift_report(path).passed
    bad_cases = [
        {**good, "status": "red"},
        {k: v for k, v in good.items() if k != "generated_at"},
        {**good, "features": [{"name": "a", "psi": -0.1, "status": "ok"}]},
        {**good, "status": "ok", "realized_accuracy": {"status": "alert"}},
    ]
    for bad in bad_cases:
        path.write_text(json.dumps(bad))
        outcome = check_drift_report(path)
        passed, message = outcome.passed, outcome.message
        assert not passed, bad
        assert message
    path.write_text("{not json")
    assert not check_drift_report(path).passed
    assert not check_drift_report(tmp_path / "missing.json").passed


def run_inventory(sales: pl.DataFrame, **cfg: object) -> dg.MaterializeResult:
    config = InventoryConfig(validation_series=10, **cfg)
    return inventory_plan(
        context=dg.build_asset_context(),
        config=config,
        sales_long=sales.lazy(),
        home=PipelineHome(),
    )


def test_inventory_plan_asset_writes_plan_and_validation(
    home: Path,
    small_sales_long: Callable,
    write_forecasts: Callable,
    write_fold_forecasts: Callable,
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    write_fold_forecasts(home, sales, n_folds=2)
    result = run_inventory(sales, overrides={"TX_2": {"service_level": 0.99, "lead_time_days": 3}})
    exports = home / "exports"
    plan = pl.read_parquet(exports / "inventory_plan.parquet")
    assert plan.height == 10 and plan["id"].n_unique() == 10
    for col in [
        "id", "item_id", "store_id", "dept_id", "demand_class", "adi", "cv2", "mean_daily_demand",
        "lead_time_days", "review_days", "service_level", "expected_demand_lt_review",
        "safety_stock", "reorder_point", "order_up_to", "eoq", "expected_holding_cost",
        "expected_stockout_cost", "unit_price",
    ]:  # fmt: skip
        assert col in plan.columns, col
    tx = plan.filter(pl.col("store_id") == "TX_2")
    ca = plan.filter(pl.col("store_id") == "CA_1")
    assert tx["service_level"].unique().to_list() == [0.99]
    assert tx["lead_time_days"].unique().to_list() == [3]
    assert ca["service_level"].unique().to_list() == [0.95]
    # the plan's mean is the forecast over lead time + review (7 + 7 days for CA_1)
    fc = pl.read_parquet(exports / "forecasts.parquet").filter(pl.col("store_id") == "CA_1")
    first14 = (
        fc.sort("date").group_by("id").head(14).group_by("id").agg(pl.col("predicted_sales").sum())
    )
    joined = ca.join(first14, on="id")
    assert (joined["expected_demand_lt_review"] - joined["predicted_sales"]).abs().max() < 1e-6
    assert plan.filter(pl.col("id") == "FOODS_1_003_CA_1")["unit_price"][0] == pytest.approx(3.0)
    assert check_plan(plan).passed
    validation = json.loads((exports / "inventory_validation.json").read_text())
    assert [lv["target"] for lv in validation["levels"]] == [0.9, 0.95, 0.99]
    assert all(0 <= lv["achieved_cycle_service_level"] <= 1 for lv in validation["levels"])
    assert {f["fold"] for f in validation["folds"]} == {1, 2}  # the backtest's folds
    assert validation["series_sampled"] == 10
    assert _meta(result.metadata["rows"]) == 10
    assert _no_temp_files(exports)


def test_inventory_plan_needs_forecasts(home: Path, small_sales_long: Callable) -> None:
    with pytest.raises(dg.Failure, match="batch_forecasts"):
        run_inventory(small_sales_long(200))


def test_inventory_validation_without_backtest_says_so(
    home: Path, small_sales_long: Callable, write_forecasts: Callable
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    run_inventory(sales)
    assert (home / "exports" / "inventory_plan.parquet").exists()
    result = checks.inventory_service_level_validated(home=PipelineHome())
    assert not result.passed
    assert "materialize demand_model" in _meta(result.metadata["message"])


def test_inventory_checks_fail_on_crafted_bad_input(
    home: Path, small_sales_long: Callable, write_forecasts: Callable
) -> None:
    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    run_inventory(sales)
    exports = home / "exports"
    plan = pl.read_parquet(exports / "inventory_plan.parquet")
    assert checks.inventory_plan_valid(home=PipelineHome()).passed
    bad_plans = [
        pl.concat([plan, plan.head(1)]),
        plan.drop("safety_stock"),
        plan.with_columns(pl.when(pl.col("id") == plan["id"][0]).then(-1.0).otherwise(pl.col("order_up_to")).alias("order_up_to")),
        plan.with_columns(pl.lit(None, pl.Float64).alias("eoq")),
        plan.with_columns(pl.lit("sporadic").alias("demand_class")),
        plan.with_columns(pl.lit(1.5).alias("service_level")),
        plan.with_columns((pl.col("order_up_to") - 1000).clip(0).alias("order_up_to"), pl.lit(5.0).alias("reorder_point")),
        plan.head(0),
    ]  # fmt: skip
    for bad in bad_plans:
        outcome = check_plan(bad)
        passed, message = outcome.passed, outcome.message
        assert not passed and message
    bad_plans[0].write_parquet(exports / "inventory_plan.parquet")
    assert not checks.inventory_plan_valid(home=PipelineHome()).passed

    path = exports / "inventory_validation.json"
    summary = json.loads(path.read_text())
    summary["levels"] = [
        {"target": 0.95, "achieved_cycle_service_level": 0.951, "fill_rate": 0.97, "cycles": 100}
    ]
    path.write_text(json.dumps(summary))
    assert checks.inventory_service_level_validated(home=PipelineHome()).passed
    summary["levels"][0]["achieved_cycle_service_level"] = 0.90
    path.write_text(json.dumps(summary))
    result = checks.inventory_service_level_validated(home=PipelineHome())
    assert not result.passed
    assert "off target" in _meta(result.metadata["message"])
    summary["levels"] = []
    path.write_text(json.dumps(summary))
    assert not checks.inventory_service_level_validated(home=PipelineHome()).passed


def test_plan_export_feeds_the_what_if(
    home: Path, small_sales_long: Callable, small_features: Callable, write_forecasts: Callable
) -> None:
    """String ids (not Enum) work too, and the exported rows re-plan to the same levels."""
    sales = small_sales_long(500).with_columns(pl.col("id").cast(pl.String))
    write_forecasts(home, sales, "v1")
    run_inventory(sales)
    plan = pl.read_parquet(home / "exports" / "inventory_plan.parquet")
    assert plan.height == 10
    again = plan_inventory(plan)
    assert (again["order_up_to"] - plan["order_up_to"]).abs().max() == 0
    stricter = plan_inventory(plan.filter(pl.col("store_id") == "CA_1"), service_level=0.99)
    assert stricter.height == 5
    assert (
        stricter["order_up_to"] >= plan.filter(pl.col("store_id") == "CA_1")["order_up_to"]
    ).all()
    run_drift(sales, small_features(sales))
    report = json.loads((home / "exports" / "drift_report.json").read_text())
    assert report["feature_drift"]["series_sampled"] == 10


def test_drift_report_exposes_status_to_prometheus(
    home: Path, small_sales_long: Callable, small_features: Callable, write_forecasts: Callable
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from forecasting_assets.contracts import PIPELINE_METRICS_FILE

    sales = small_sales_long(500)
    write_forecasts(home, sales, "v1")
    run_drift(sales, small_features(sales, drift_last_days=28))
    text = (home / "exports" / PIPELINE_METRICS_FILE).read_text()
    status = {
        s.labels["scope"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "forecasting_pipeline_drift_status"
    }
    assert status["overall"] == status["features"] == 2  # alert
