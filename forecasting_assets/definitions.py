"""The Dagster code location: every asset, check, job, schedule, sensor and resource."""

import dagster as dg

from forecasting_assets.defs import jobs, schedules, sensors
from forecasting_assets.defs.assets import features, ingest, modeling, monitoring
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.defs.resources import M5Source

ASSET_MODULES = [ingest, features, modeling, monitoring]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(ASSET_MODULES),
    asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
    jobs=[jobs.m5_pipeline_job, jobs.forecast_job, jobs.retrain_job],
    schedules=[schedules.nightly_retrain_schedule, schedules.daily_forecast_schedule],
    sensors=[sensors.raw_files_sensor, sensors.drift_alert_sensor, sensors.run_failure_alert_sensor],
    resources={
        "io_manager": AtomicParquetIOManager(),
        "m5_source": M5Source(),
        "mlflow": MLflowResource(),
    },
    executor=dg.in_process_executor,
)
