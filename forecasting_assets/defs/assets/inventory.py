"""Inventory stage: the ``inventory_plan`` asset (the maths lives in ``forecasting_assets.inventory``).

It reads the forecasts export written by ``batch_forecasts`` and writes, atomically,
``exports/inventory_plan.parquet`` (checked against its export schema first) and
``exports/inventory_validation.json`` (the policy simulated on the model's backtest folds).
"""

import dagster as dg
import polars as pl

from forecasting_assets.contracts import (
    BACKTEST_FORECASTS_FILE,
    FORECASTS_FILE,
    INVENTORY_PLAN_FILE,
    INVENTORY_VALIDATION_FILE,
)
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.export_schemas import validate_export
from forecasting_assets.inventory.plan import InventoryParams, build_plan
from forecasting_assets.inventory.validation import levels_markdown, validate_on_backtest
from forecasting_assets.monitoring.archive import read_forecasts
from forecasting_assets.monitoring.history import history_window
from forecasting_assets.settings import atomic_write, write_json

GROUP = "monitoring"


class InventoryConfig(dg.Config, InventoryParams):
    """Policy defaults, per store/department overrides and the validation set-up."""


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[dg.AssetKey("batch_forecasts")],
    ins={"sales_long": dg.AssetIn(key="sales_long")},
)
def inventory_plan(
    context: dg.AssetExecutionContext,
    config: InventoryConfig,
    sales_long: pl.LazyFrame,
    home: PipelineHome,
) -> dg.MaterializeResult:
    """Inventory plan (`exports/inventory_plan.parquet`), one row per series: demand class
    (ADI/CV²), expected demand over lead time + review, safety stock, reorder point and
    order-up-to level for the target cycle service level from a negative-binomial (Poisson)
    protection-period demand whose mean is the forecast and whose dispersion is fitted on
    history, EOQ and expected yearly holding / stock-out / ordering costs. Defaults 95 %, 7-day
    lead time, weekly review; per store / department overrides. The policy is validated by
    simulating it on the model's backtest folds, with their forecasts
    (`exports/inventory_validation.json`)."""
    exports = home.exports_dir
    forecasts = read_forecasts(exports)
    if forecasts is None:
        raise dg.Failure(
            f"{exports / FORECASTS_FILE} does not exist: materialize batch_forecasts first"
        )
    series, matrix = history_window(sales_long, config.plan_days())
    plan = validate_export(INVENTORY_PLAN_FILE, build_plan(series, matrix, forecasts, config))
    path = exports / INVENTORY_PLAN_FILE
    with atomic_write(path) as tmp:
        plan.write_parquet(tmp)
    summary = validate_on_backtest(sales_long, exports / BACKTEST_FORECASTS_FILE, config)
    write_json(exports / INVENTORY_VALIDATION_FILE, summary)
    classes = plan.group_by("demand_class").len().sort("demand_class")
    context.log.info("inventory_plan: %d series written to %s", plan.height, path)
    return dg.MaterializeResult(
        metadata={
            "path": str(path),
            "rows": plan.height,
            "demand_classes": dg.MetadataValue.json(
                dict(zip(classes["demand_class"], classes["len"], strict=True))
            ),
            "safety_stock_value": float((plan["safety_stock"] * plan["unit_price"]).sum()),
            "expected_total_cost_per_year": float(plan["expected_total_cost"].sum()),
            "validation": dg.MetadataValue.md(levels_markdown(summary)),
        }
    )
