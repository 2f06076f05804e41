"""Schedules: nightly retrain + forecast, and an optional daily forecast-only run."""

import dagster as dg

from forecasting_assets.defs.jobs import forecast_job, m5_pipeline_job

nightly_retrain_schedule = dg.ScheduleDefinition(
    name="nightly_retrain",
    job=m5_pipeline_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC: ingest, retrain, backtest, promote if better, forecast, drift, inventory.",
)

daily_forecast_schedule = dg.ScheduleDefinition(
    name="daily_forecast",
    job=forecast_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="06:00 UTC: re-forecast with the current champion only. Off by default (the "
    "nightly retrain already forecasts); switch it on when you retrain less often.",
)
