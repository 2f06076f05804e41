"""Asset checks of the features, drift and inventory stages (the invariants are pure functions).

The ingestion checks run inside their assets' steps (``defs/assets/ingest.py``); the modeling
checks live beside the modeling assets.
"""

import dagster as dg
import polars as pl

from forecasting_assets.contracts import (
    DRIFT_REPORT_FILE,
    INVENTORY_PLAN_FILE,
    INVENTORY_VALIDATION_FILE,
    CheckOutcome,
)
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.features import checks as feature_checks
from forecasting_assets.inventory.plan import check_plan
from forecasting_assets.inventory.validation import check_validation
from forecasting_assets.monitoring.report import check_drift_report

FEATURES = dg.AssetKey("features")


def check_result(outcome: CheckOutcome, *, warn: bool = False) -> dg.AssetCheckResult:
    """A check outcome as a Dagster check result (ERROR, or WARN when ``warn``)."""
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        description=outcome.message[:2000],
        metadata={"message": outcome.message, **outcome.metadata},
    )


# ----------------------------------------------------------------------------- features
@dg.asset_check(
    asset=FEATURES,
    blocking=True,
    additional_ins={"sales_long": dg.AssetIn("sales_long")},
    description="The table has the row count and rows per day of sales_long.",
)
def features_rows_match_sales_long(
    features: pl.LazyFrame, sales_long: pl.LazyFrame
) -> dg.AssetCheckResult:
    """Row count and rows per day (hence day range and series count) equal sales_long's."""
    return check_result(feature_checks.check_rows_match(features, sales_long))


@dg.asset_check(
    asset=FEATURES,
    blocking=True,
    description="Horizon rows have every lag>=28 / rolling feature where history exists.",
)
def features_horizon_direct_inputs(features: pl.LazyFrame) -> dg.AssetCheckResult:
    """The direct model can score every horizon day of every launched series."""
    return check_result(feature_checks.check_horizon_features(features))


@dg.asset_check(asset=FEATURES, description="All catalogued columns exist.")
def features_schema_complete(features: pl.LazyFrame) -> dg.AssetCheckResult:
    """Schema against the catalog (non-blocking warning)."""
    return check_result(feature_checks.check_schema(features), warn=True)


# ----------------------------------------------------------------------------- drift, inventory
@dg.asset_check(asset="drift_report", description="The drift report is complete and consistent.")
def drift_report_valid(home: PipelineHome) -> dg.AssetCheckResult:
    """Keys, status values, PSI >= 0 and an overall status no milder than its parts."""
    return check_result(check_drift_report(home.exports_dir / DRIFT_REPORT_FILE))


@dg.asset_check(asset="inventory_plan", description="The plan is complete and coherent.")
def inventory_plan_valid(home: PipelineHome) -> dg.AssetCheckResult:
    """Columns, one row per id, no nulls, non-negative levels and costs, S >= reorder point."""
    path = home.exports_dir / INVENTORY_PLAN_FILE
    if not path.exists():
        return check_result(CheckOutcome(False, f"{path} does not exist"))
    return check_result(check_plan(pl.read_parquet(path)))


@dg.asset_check(
    asset="inventory_plan",
    description="Simulated on history, the policy achieves its target cycle service levels.",
)
def inventory_service_level_validated(home: PipelineHome) -> dg.AssetCheckResult:
    """Achieved cycle service level within the tolerance (±3 points) at every validated target."""
    outcome = check_validation(home.exports_dir / INVENTORY_VALIDATION_FILE)
    return check_result(outcome, warn=True)


FEATURE_CHECKS = [
    features_rows_match_sales_long,
    features_horizon_direct_inputs,
    features_schema_complete,
]
"""The whole-table checks of ``features`` (the scale-out location checks per partition)."""
