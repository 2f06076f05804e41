"""The Dagster code location: every asset, check, job, schedule, sensor and resource.

`defs` is the embedded default (one machine, in-process executor). `build_defs` lets another
code location swap the features asset (e.g. partitioned by store) and the executor while
keeping everything else identical.
"""

import dagster as dg

from forecasting_assets.defs import jobs, schedules, sensors
from forecasting_assets.defs.assets import features, ingest, modeling, monitoring
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.defs.resources import M5Source

ASSET_MODULES = [ingest, features, modeling, monitoring]


def build_defs(
    features_asset: dg.AssetsDefinition = features.features,
    executor: dg.ExecutorDefinition = dg.in_process_executor,
) -> dg.Definitions:
    """The code location, with ``features_asset`` (same key ``features``) and ``executor``."""
    assets = [
        asset
        for asset in dg.load_assets_from_modules(ASSET_MODULES)
        if asset.key != dg.AssetKey("features")
    ]
    return dg.Definitions(
        assets=[*assets, features_asset],
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[jobs.m5_pipeline_job, jobs.forecast_job, jobs.retrain_job],
        schedules=[schedules.nightly_retrain_schedule, schedules.daily_forecast_schedule],
        sensors=[
            sensors.raw_files_sensor,
            sensors.drift_alert_sensor,
            sensors.run_failure_alert_sensor,
            sensors.dead_run_sensor,
        ],
        resources={
            "io_manager": AtomicParquetIOManager(),
            "m5_source": M5Source(),
            "mlflow": MLflowResource(),
        },
        executor=executor,
    )


defs = build_defs()
