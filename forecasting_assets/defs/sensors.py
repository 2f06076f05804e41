"""Sensors: new raw data, drift alerts, failed runs, and runs whose process died."""

import json
import logging
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

from forecasting_assets.defs.jobs import forecast_job, retrain_job
from forecasting_assets.m5.readers import FILE_CANDIDATES, file_hash, find_m5_files
from forecasting_assets.settings import atomic_write, get_settings

log = logging.getLogger(__name__)

RAW_ASSETS = {table: f"raw_{table}" for table in FILE_CANDIDATES}
WEBHOOK_ENV = "FORECASTING_ALERT_WEBHOOK_URL"


def _materialized_hash(instance: dg.DagsterInstance, asset: str) -> str | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("sha256")
    return getattr(value, "value", None) if value is not None else None


@dg.sensor(
    job=forecast_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches M5_RAW_DIR. When a file's *content* differs from what was last "
    "ingested (SHA-256, recomputed only when size or mtime change), starts ingestion and "
    "re-forecasting. Touching a file without changing it does nothing.",
)
def raw_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    cursor: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    files = find_m5_files(get_settings().raw_dir)
    if not all(files.values()):
        return dg.SkipReason(f"waiting for all three M5 files in {get_settings().raw_dir}")
    changed, new_cursor = [], {}
    for table, path in files.items():
        stat = path.stat()
        cached = cursor.get(str(path))
        digest = (
            cached[2]
            if cached and cached[:2] == [stat.st_mtime_ns, stat.st_size]
            else file_hash(path)
        )
        new_cursor[str(path)] = [stat.st_mtime_ns, stat.st_size, digest]
        if digest != _materialized_hash(context.instance, RAW_ASSETS[table]):
            changed.append(table)
    cursor_text = json.dumps(new_cursor, sort_keys=True)
    if not changed:
        return dg.SensorResult(
            skip_reason="raw files unchanged since last ingestion", cursor=cursor_text
        )
    run_key = "raw-" + "-".join(v[2][:12] for _, v in sorted(new_cursor.items()))
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key, tags={"trigger": "raw_files", "changed": ",".join(changed)}
            )
        ],
        cursor=cursor_text,
    )


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads exports/drift_report.json and requests a retrain when its status is "
    "'alert' (once per report, and at most once per cooldown period).",
)
def drift_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    path = get_settings().exports_dir / "drift_report.json"
    if not path.exists():
        return dg.SkipReason("no drift report yet")
    report = json.loads(path.read_text())
    cursor = json.loads(context.cursor) if context.cursor else {}
    generated = str(report.get("generated_at"))
    if report.get("status") != "alert" or cursor.get("report") == generated:
        return dg.SensorResult(
            skip_reason=f"drift status {report.get('status')!r}",
            cursor=json.dumps({**cursor, "report": generated}),
        )
    cooldown = timedelta(hours=float(os.environ.get("FORECASTING_RETRAIN_COOLDOWN_HOURS", "12")))
    last = cursor.get("retrained_at")
    now = datetime.now(UTC)
    if last and now - datetime.fromisoformat(last) < cooldown:
        return dg.SensorResult(
            skip_reason="drift alert, but a retrain ran within the cooldown",
            cursor=json.dumps({**cursor, "report": generated}),
        )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"drift-{generated}", tags={"trigger": "drift_alert"})],
        cursor=json.dumps({"report": generated, "retrained_at": now.isoformat()}),
    )


def record_alert(alert: dict) -> None:
    """Append an alert to exports/alerts.jsonl (atomically) and POST it to the webhook, if set."""
    path = get_settings().exports_dir / "alerts.jsonl"
    previous = path.read_text() if path.exists() else ""
    with atomic_write(path) as tmp:
        tmp.write_text(previous + json.dumps(alert, default=str) + "\n")
    log.error("pipeline alert: %s", json.dumps(alert, default=str))
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        request = urllib.request.Request(
            url,
            data=json.dumps(alert, default=str).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError as error:
            log.warning("alert webhook failed: %s", error)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run as an alert in exports/alerts.jsonl (shown by the "
    "dashboard), logs it, and POSTs it to $FORECASTING_ALERT_WEBHOOK_URL when set.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    record_alert(
        {
            "time": datetime.now(UTC).isoformat(),
            "kind": "run_failure",
            "job": run.job_name,
            "run_id": run.run_id,
            "message": (context.failure_event.message or "")[:2000],
        }
    )


DEAD_RUN_GRACE_SECONDS = 30.0
"""A run is judged only this long after it started (its worker's pid is recorded by then)."""


def process_alive(pid: int, started_by: float) -> bool:
    """True if process ``pid`` exists on this host and started no later than ``started_by``
    (epoch seconds): a newer process with the same pid is another program."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():  # no procfs (macOS): existence is all we know
        return True
    ticks = int(stat.read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK") <= started_by + 1.0


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started executing the run (its RUN_START event)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def fail_dead_runs(instance: dg.DagsterInstance, now: float) -> list[str]:
    """Mark FAILED every STARTED run whose worker process is gone; returns their ids.

    Runs whose launcher can check worker health (e.g. Kubernetes) are left to Dagster's run
    monitoring. Otherwise the worker is the process that logged RUN_START: the default
    launcher's run worker, or the ``dagster asset materialize`` / ``dagster job execute``
    process. It must run on this host (container): the sensor runs in the code server, which
    is where the default launcher starts run workers.
    """
    if instance.run_launcher.supports_check_run_worker_health:
        return []
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        started = record.start_time
        if started is None or now - started < DEAD_RUN_GRACE_SECONDS:
            continue
        pid = worker_pid(instance, run.run_id)
        if pid is None or process_alive(pid, started):
            continue
        message = (
            f"Run worker process {pid} is gone (killed, out of memory or a restart of the "
            "machine's services): marking the run failed so the queue moves on."
        )
        instance.report_run_failed(
            run,
            message,
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        log.error("run %s (%s): %s", run.run_id, run.job_name, message)
        failed.append(run.run_id)
    return failed


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks FAILED every STARTED run whose process died (SIGKILL, out of memory, a "
    "machine or daemon restart), so that the one-at-a-time run queue moves on; the "
    "run-failure sensor then records the alert. Complements Dagster's run monitoring "
    "(dagster.yaml), which cannot see the health of default-launcher or CLI run workers.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = fail_dead_runs(context.instance, datetime.now(UTC).timestamp())
    if failed:
        return dg.SkipReason(f"marked {len(failed)} dead run(s) failed: {', '.join(failed)}")
    return dg.SkipReason("every started run has a live worker process")
