"""A killed run never blocks the one-at-a-time queue, tried with a real `dagster-daemon`.

The instance is the repository's own `dagster.yaml` (QueuedRunCoordinator with
max_concurrent_runs: 1, run monitoring) with SQLite storage in a temporary DAGSTER_HOME; the
code location is tests/pipeline/tiny_location.py (fast assets, the project's dead-run sensor,
hooks and MLflow resource). Two ways to die, as on a real machine:

1. the daemon's whole process tree (daemon, code server, run worker) is SIGKILLed during a run,
   then the daemon is restarted;
2. a `dagster asset materialize` process is SIGKILLed.

Either way the dead run must be marked failed and a newly queued run must start and succeed
within a few minutes; the MLflow run the dead run left RUNNING is marked KILLED by the next.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from forecasting_assets.defs.mlflow_resource import DAGSTER_RUN_TAG
from tests.pipeline.services import process_tree

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOCATION = Path(__file__).with_name("tiny_location.py")
BIN = Path(sys.executable).parent
MOVE_ON_SECONDS = float(os.environ.get("KILLED_RUN_TIMEOUT_SECONDS", "300"))
"""How long a newly queued run may wait behind a dead one ("a few minutes")."""


class Deployment:
    """A DAGSTER_HOME, workspace and environment, and the processes started on them."""

    def __init__(self, root: Path, tracking_uri: str) -> None:
        self.home = root / "dagster_home"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        # Create the SQLite storage once, before the daemon and `dagster job launch` both would.
        dg.DagsterInstance.from_config(str(self.home)).dispose()
        self.workspace = root / "workspace.yaml"
        self.workspace.write_text(
            f"load_from:\n  - python_file:\n      relative_path: {LOCATION}\n"
            f"      working_directory: {REPO}\n"
        )
        self.release = root / "release"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "PYTHONPATH": str(REPO),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "TINY_RELEASE": str(self.release),
        }
        self.logs = root
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the process)
        proc = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes.append(proc)
        return proc

    def daemon(self) -> subprocess.Popen:
        return self.start("dagster-daemon", "run", "-w", str(self.workspace), name="daemon")

    def queue_run(self, seconds: float) -> str:
        """Submit a run of the tiny job to the queue (`dagster job launch`); returns its id."""
        run_id = str(uuid.uuid4())
        config = json.dumps({"ops": {"tracked": {"config": {"seconds": seconds}}}})
        subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", str(self.workspace), "-j", "tiny",
             "--config-json", config, "--run-id", run_id],
            env=self.env, check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        return run_id

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.processes:
            kill_tree(proc.pid)
            proc.wait(timeout=30)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and all its descendants at once (no process gets to clean up)."""
    tree = process_tree(pid)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return tree


def wait_for(predicate, timeout: float, what: str, deployment: Deployment):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{deployment.log('daemon')}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture
def deployment(tmp_path: Path, mlflow_store: str) -> Iterator[Deployment]:
    d = Deployment(tmp_path, mlflow_store)
    yield d
    d.stop_all()


def runs(deployment: Deployment) -> list[dg.DagsterRun]:
    """The instance's runs, oldest first (read afresh: other processes write them)."""
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        return list(reversed(instance.get_runs()))


def worker_pid(deployment: Deployment, run_id: str) -> int | None:
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
        ).records
        return records[0].event_log_entry.dagster_event.pid if records else None


def started_run(deployment: Deployment) -> tuple[dg.DagsterRun, int]:
    def probe():
        for run in runs(deployment):
            if run.status == dg.DagsterRunStatus.STARTED:
                pid = worker_pid(deployment, run.run_id)
                if pid is not None:
                    return run, pid
        return None

    return wait_for(probe, 240, "the first run to start", deployment)


def mlflow_runs(tracking_uri: str) -> dict[str | None, str]:
    """Status of every MLflow run, by the Dagster run that owns it."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return {r.data.tags.get(DAGSTER_RUN_TAG): r.info.status for r in client.search_runs(ids)}


def wait_for_mlflow_run(deployment: Deployment, run_id: str, tracking_uri: str) -> None:
    """Until the run's step has opened its MLflow run (so the kill leaves it RUNNING)."""
    wait_for(
        lambda: mlflow_runs(tracking_uri).get(run_id) == "RUNNING",
        120, "the run's MLflow run", deployment,
    )  # fmt: skip


def assert_queue_moves_on(deployment: Deployment, dead: dg.DagsterRun, tracking_uri: str) -> None:
    """The dead run is failed, a newly queued run succeeds, and MLflow is cleaned up."""
    assert {r.run_id: r.status for r in runs(deployment)}[dead.run_id] == (
        dg.DagsterRunStatus.STARTED
    ), "precondition: the killed run is left STARTED in storage"
    deployment.release.touch()  # a retry of the killed run (run_retries) finishes at once
    queued_at = time.monotonic()
    newest = deployment.queue_run(seconds=0)

    def finished():
        status = {r.run_id: r.status for r in runs(deployment)}
        return status[newest] == dg.DagsterRunStatus.SUCCESS and status

    status = wait_for(finished, MOVE_ON_SECONDS, "the newly queued run to succeed", deployment)
    print(f"queued run succeeded {time.monotonic() - queued_at:.0f} s after it was queued")
    assert status[dead.run_id] == dg.DagsterRunStatus.FAILURE

    by_owner = mlflow_runs(tracking_uri)
    assert by_owner[dead.run_id] == "KILLED"
    assert by_owner[newest] == "FINISHED"
    assert "RUNNING" not in by_owner.values()


def test_daemon_tree_killed_during_a_run_then_restarted(
    deployment: Deployment, mlflow_store: str
) -> None:
    daemon = deployment.daemon()
    deployment.queue_run(seconds=600)
    dead, pid = started_run(deployment)
    wait_for_mlflow_run(deployment, dead.run_id, mlflow_store)
    tree = kill_tree(daemon.pid)
    assert pid in tree, "the run worker runs under the daemon's code server"
    daemon.wait(timeout=30)
    wait_for(lambda: not alive(pid), 30, "the run worker to die", deployment)

    deployment.daemon()
    assert_queue_moves_on(deployment, dead, mlflow_store)


def test_killed_asset_materialize_does_not_block_the_queue(
    deployment: Deployment, mlflow_store: str
) -> None:
    config = json.dumps({"ops": {"tracked": {"config": {"seconds": 600}}}})
    cli = deployment.start(
        "dagster", "asset", "materialize", "-f", str(LOCATION), "--select", "tracked",
        "--config-json", config, name="materialize",
    )  # fmt: skip
    dead, pid = started_run(deployment)
    assert pid == cli.pid
    wait_for_mlflow_run(deployment, dead.run_id, mlflow_store)
    kill_tree(cli.pid)
    cli.wait(timeout=30)

    deployment.daemon()
    assert_queue_moves_on(deployment, dead, mlflow_store)
