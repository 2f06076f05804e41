"""Schedules and sensors, evaluated with Dagster's own contexts against a real instance."""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent

from forecasting_assets.defs import schedules, sensors
from forecasting_assets.defs.assets import ingest
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.resources import M5Source, PipelineHome


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def ingest_into(instance: dg.DagsterInstance, raw_dir: Path) -> None:
    result = dg.materialize(
        [ingest.raw_calendar, ingest.raw_sales, ingest.raw_prices],
        resources={
            "io_manager": AtomicParquetIOManager(),
            "m5_source": M5Source(raw_dir=str(raw_dir), generate_if_empty=False),
            "home": PipelineHome(),
        },
        instance=instance,
    )
    assert result.success


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return sensors.raw_files_sensor(context)


def test_raw_files_sensor_requests_runs_only_for_changed_content(
    instance: dg.DagsterInstance, raw_dir: Path
) -> None:
    first = tick(instance, None)
    assert len(first.run_requests) == 1, "never-ingested files must start a run"

    ingest_into(instance, raw_dir)
    unchanged = tick(instance, first.cursor)
    assert not unchanged.run_requests

    sales = raw_dir / "sales_train_evaluation.csv"
    stat = sales.stat()
    os.utime(sales, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same content
    touched = tick(instance, unchanged.cursor)
    assert not touched.run_requests

    sales.write_text(sales.read_text().replace(",0,", ",1,", 1))
    changed = tick(instance, touched.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].tags["changed"] == "sales"
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def write_drift(home: Path, status: str, generated_at: str) -> None:
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "drift_report.json").write_text(
        json.dumps({"status": status, "generated_at": generated_at})
    )


def drift_tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return sensors.drift_alert_sensor(dg.build_sensor_context(cursor=cursor))


def test_drift_sensor_requests_retrain_on_alert_once(home: Path) -> None:
    assert isinstance(drift_tick(None), dg.SkipReason)  # no report yet

    write_drift(home, "ok", "2026-01-01T00:00:00")
    ok = drift_tick(None)
    assert not ok.run_requests

    write_drift(home, "alert", "2026-01-02T00:00:00")
    alert = drift_tick(ok.cursor)
    assert len(alert.run_requests) == 1
    assert alert.run_requests[0].tags["trigger"] == "drift_alert"

    assert not drift_tick(alert.cursor).run_requests  # same report: no second retrain
    write_drift(home, "alert", "2026-01-02T06:00:00")
    assert not drift_tick(alert.cursor).run_requests  # new alert inside the cooldown


def test_drift_sensor_warn_does_not_retrain(home: Path) -> None:
    write_drift(home, "warn", "2026-01-03T00:00:00")
    assert not drift_tick(None).run_requests


def test_schedules_target_the_right_jobs() -> None:
    assert schedules.nightly_retrain_schedule.job_name == "m5_pipeline"
    assert schedules.nightly_retrain_schedule.cron_schedule == "0 2 * * *"
    assert schedules.daily_forecast_schedule.job_name == "forecast_with_champion"
    context = dg.build_schedule_context()
    request = schedules.nightly_retrain_schedule.evaluate_tick(context).run_requests[0]
    assert isinstance(request, dg.RunRequest)


class _Capture(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Capture.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_run_failure_sensor_records_alert_and_calls_webhook(
    home: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(sensors.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hook")

    @dg.op
    def explode() -> None:
        raise RuntimeError("disk full")

    @dg.job
    def failing_job() -> None:
        explode()

    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    sensors.run_failure_alert_sensor(context)
    server.shutdown()

    lines = (home / "exports" / "alerts.jsonl").read_text().splitlines()
    alert = json.loads(lines[-1])
    assert alert["job"] == "failing_job" and alert["run_id"] == result.run_id
    assert _Capture.received and _Capture.received[-1]["run_id"] == result.run_id


def _started_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    """A run marked STARTED by a RUN_START event from process ``pid``, as a run worker logs."""
    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def worker_job() -> None:
        noop()

    run = instance.create_run_for_job(worker_job)
    event = DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid
    )
    instance.report_dagster_event(event, run.run_id)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run


def test_fail_dead_runs_fails_only_runs_whose_worker_is_gone(instance: dg.DagsterInstance) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = _started_run(instance, gone.pid)
    live = _started_run(instance, os.getpid())
    now = time.time()

    assert sensors.fail_dead_runs(instance, now) == []  # within the grace period
    later = now + sensors.DEAD_RUN_GRACE_SECONDS + 1
    assert sensors.fail_dead_runs(instance, later) == [dead.run_id]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    failure = instance.get_records_for_run(
        dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records[0]
    assert f"process {gone.pid} is gone" in failure.event_log_entry.message
    assert sensors.fail_dead_runs(instance, later) == []  # already failed: nothing to do


def test_process_alive_rejects_a_reused_pid() -> None:
    assert sensors.process_alive(os.getpid(), started_by=time.time())
    # This process started after 2001: a run started then cannot have been its work.
    assert not sensors.process_alive(os.getpid(), started_by=1_000_000_000.0)


def test_dead_run_sensor_is_in_the_code_location() -> None:
    from forecasting_assets.definitions import defs

    sensor = defs.resolve_sensor_def("dead_run_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
