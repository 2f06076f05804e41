"""Jobs: the whole pipeline, re-forecasting with the current champion, and retraining."""

import dagster as dg

from forecasting_assets.defs.mlflow_resource import end_mlflow_on_run_finished

TRAINING_ASSETS = ("baselines", "demand_model")
FORECAST_ASSETS = ("batch_forecasts", "drift_report", "inventory_plan")

EXPORT_WRITER = {"exports": "write"}
"""Runs that write the exports; run queues limit them to one at a time (dagster*.yaml)."""

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
"""Transient failures (I/O, MLflow store locked) are retried; validation failures are not."""

HOOKS = {end_mlflow_on_run_finished}
"""dagster-mlflow's hook: ends the job's shared MLflow run (the resource's teardown too)."""

m5_pipeline_job = dg.define_asset_job(
    "m5_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest and validate the raw files, build features, train and "
    "backtest the model (promoting it only if it beats the champion), forecast, report drift "
    "and plan inventory. The nightly schedule runs it.",
    op_retry_policy=RETRY,
    hooks=HOOKS,
    tags=EXPORT_WRITER,
)

forecast_job = dg.define_asset_job(
    "forecast_with_champion",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*TRAINING_ASSETS),
    description="Ingest the raw files, rebuild features and re-forecast with the current "
    "champion (no retraining), then refresh drift and inventory.",
    op_retry_policy=RETRY,
    hooks=HOOKS,
    tags=EXPORT_WRITER,
)

retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets(*TRAINING_ASSETS, *FORECAST_ASSETS),
    description="Retrain and backtest on the current features, promote if better, re-forecast.",
    op_retry_policy=RETRY,
    hooks=HOOKS,
    tags=EXPORT_WRITER,
)
