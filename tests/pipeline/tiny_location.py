"""A tiny code location for the automation tests: the project's jobs' hooks, its MLflow
resource and its dead-run sensor around two fast assets, so no model is trained.

``tracked`` opens the shared MLflow run, logs a metric and waits (for ``seconds``, or until
the file named by ``$TINY_RELEASE`` exists), then fails if asked; ``after`` logs to the same
run.
"""

import os
import time
from pathlib import Path

import dagster as dg

from forecasting_assets.defs import jobs, sensors
from forecasting_assets.defs.mlflow_resource import MLflowResource


class TrackedConfig(dg.Config):
    seconds: float = 0.0
    fail: bool = False


@dg.asset
def tracked(config: TrackedConfig, mlflow: MLflowResource) -> int:
    import mlflow as mlf

    with mlflow.start_run(run_name="tracked", tags={"stage": "tracked"}):
        mlf.log_metric("tracked", 1.0)
        release = Path(os.environ.get("TINY_RELEASE", "/nonexistent/release"))
        deadline = time.monotonic() + config.seconds
        while time.monotonic() < deadline and not release.exists():
            time.sleep(0.2)
        if config.fail:
            raise RuntimeError("tracked asked to fail")
    return 1


@dg.asset
def after(tracked: int, mlflow: MLflowResource) -> int:
    import mlflow as mlf

    with mlflow.start_run(run_name="after"):
        mlf.log_metric("after", float(tracked + 1))
    return tracked + 1


tiny_job = dg.define_asset_job("tiny", selection=[tracked, after], hooks=jobs.HOOKS)

defs = dg.Definitions(
    assets=[tracked, after],
    jobs=[tiny_job],
    # TINY_NO_DEAD_RUN_SENSOR=1 shows what happens without it (the killed-run tests then fail).
    sensors=[] if os.environ.get("TINY_NO_DEAD_RUN_SENSOR") else [sensors.dead_run_sensor],
    resources={"mlflow": MLflowResource()},
    executor=dg.in_process_executor,
)
