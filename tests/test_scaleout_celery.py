"""Store partitions of `features` executed by two real Celery workers over a real Redis broker.

Starts `redis-server` on a free port and two `dagster-celery` workers (distinct names, one task
at a time each), launches one run per store partition at the same time -- as a backfill with
one partition per run does -- and reads back from the Dagster instance which worker ran each
step: both workers must have worked, and every partition's features step ran on a worker (the
asset's own `worker` metadata agrees with Celery's report).
"""

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from scaleout_servers import redis_server

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WORKERS = ("worker1", "worker2")


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis broker URL, exported as DAGSTER_CELERY_BROKER_URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    pytest.importorskip("dagster_celery")
    with redis_server() as url:
        monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", url)
        yield url


@pytest.fixture
def dagster_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A persistent (SQLite) instance the test process and the workers share."""
    folder = home / "dagster_home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    import dagster as dg

    with dg.DagsterInstance.get():  # create the SQLite storages once, before the workers race
        pass
    return folder


@pytest.fixture
def workers(
    broker: str, dagster_home: Path, raw_dir: Path, home: Path
) -> Iterator[Callable[[], None]]:
    """Two workers (own process groups, stopped afterwards); yields a wait-until-ready function
    (they import the code location while the test ingests the data)."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    procs, logs = [], []
    for name in WORKERS:
        log = home / f"{name}.log"
        # -i: import the code location once at start-up, before the pool forks
        command = [
            str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(REPO / "deploy" / "celery.yaml"), "-n", name, "-l", "WARNING",
            "-i", "forecasting_assets.definitions_scaleout", "--", "--concurrency=1",
        ]  # fmt: skip
        with open(log, "w") as out:
            proc = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        logs.append(log)
    try:
        yield lambda: _wait_for_workers(broker, procs, logs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            with contextlib.suppress(ProcessLookupError):  # the celery child, if it lingers
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_workers(broker: str, procs: list[subprocess.Popen], logs: list[Path]) -> None:
    """Until both workers answer a Celery ping (they import the code location first)."""
    from dagster_celery.make_app import make_app

    app = make_app({"broker": broker, "backend": broker})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dead = [log for proc, log in zip(procs, logs, strict=True) if proc.poll() is not None]
        assert not dead, "worker died: " + "\n".join(p.read_text()[-3000:] for p in dead)
        answered = {name.split("@")[0] for reply in app.control.ping(timeout=1.0) for name in reply}
        if answered >= set(WORKERS):
            return
    raise TimeoutError("celery workers did not answer in 120 s")


@pytest.fixture
def scaleout_module(broker: str) -> Iterator[object]:
    """forecasting_assets.definitions_scaleout (re)loaded with the broker set -> Celery executor."""
    import forecasting_assets.definitions_scaleout as module

    yield importlib.reload(module)
    os.environ.pop("DAGSTER_CELERY_BROKER_URL", None)
    importlib.reload(module)


def _step_workers(instance: object, run_id: str) -> dict[str, str]:
    """{step key: Celery worker} from the workers' 'Executing steps ... in celery worker'."""
    out = {}
    for entry in instance.all_logs(run_id):  # type: ignore[attr-defined]
        event = entry.dagster_event
        if event is None or event.event_type_value != "ENGINE_EVENT":
            continue
        meta = event.engine_event_data.metadata
        if "Celery worker" in meta:
            out[entry.step_key] = meta["Celery worker"].value
    return out


def test_partitions_run_on_two_celery_workers(
    workers: Callable[[], None], scaleout_module: object, dagster_home: Path, raw_dir: Path
) -> None:
    import dagster as dg

    from forecasting_assets import scaleout

    defs = scaleout_module.defs  # type: ignore[attr-defined]
    assert type(defs.executor).__name__ == "ExecutorDefinition"
    assert defs.executor.name == "celery"

    with dg.DagsterInstance.get() as instance:
        # Ingestion in this process (execute_in_process ignores the job's executor).
        assert defs.resolve_job_def("ingest").execute_in_process(instance=instance).success
        stores = scaleout.register_stores(instance, pl.scan_parquet(scaleout.sales_long_path()))
        assert stores == ["CA_1", "CA_2"]
        workers()  # both answer a Celery ping

        # One run per partition, launched together as separate processes (what a backfill with
        # one partition per run does through the run launcher); each run's steps go to the
        # Celery queue and the workers execute them.
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        command = [str(VENV_BIN / "dagster"), "job", "execute", "-j", "features_by_store",
                   "-m", "forecasting_assets.definitions_scaleout", "--tags"]  # fmt: skip
        procs = [
            subprocess.Popen(
                [*command, json.dumps({"dagster/partition": store})],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for store in stores
        ]
        outputs = [proc.communicate(timeout=240)[0] for proc in procs]
        for proc, output in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, output[-3000:]
        runs = {r.tags["dagster/partition"]: r.run_id for r in instance.get_runs()
                if r.job_name == "features_by_store"}  # fmt: skip
        run_ids = [runs[s] for s in stores]

        step_workers: dict[str, dict[str, str]] = {}
        for store, run_id in zip(stores, run_ids, strict=True):
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
            step_workers[store] = _step_workers(instance, run_id)
            # every step of the run (features + its 3 checks) was executed by a worker
            assert set(step_workers[store]) == {
                "features",
                "features_features_rows_match_sales_long",
                "features_features_horizon_direct_inputs",
                "features_features_schema_complete",
            }
            event = instance.get_latest_materialization_event(dg.AssetKey("features"))
            assert event is not None
        used = {w.split("@")[0] for steps in step_workers.values() for w in steps.values()}
        assert used == set(WORKERS), step_workers

        # The asset's own record of its worker agrees with Celery's, per partition.
        for store in stores:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("features"), asset_partitions=[store]),
                limit=1,
            ).records
            worker = records[0].asset_materialization.metadata["worker"].value
            assert worker == step_workers[store]["features"]

    # Same table as computing each store locally.
    for store in stores:
        part = pl.read_parquet(scaleout.partition_path(store))
        assert part["store_id"].cast(pl.String).unique().to_list() == [store]
        assert (
            part.height
            == pl.scan_parquet(scaleout.sales_long_path())
            .filter(pl.col("store_id") == store)
            .select(pl.len())
            .collect()
            .item()
        )

    # The demand model's store members, one run per store partition on the same workers; then
    # demand_model (retrain, in this process) reuses both and trains nothing itself.
    config = home_config(dagster_home)
    command = [str(VENV_BIN / "dagster"), "job", "execute", "-j", "store_models_by_store",
               "-m", "forecasting_assets.definitions_scaleout", "-c", str(config), "--tags"]  # fmt: skip
    procs = [
        subprocess.Popen([*command, json.dumps({"dagster/partition": store})], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for store in stores
    ]  # fmt: skip
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    from forecasting_assets.scaleout_models import load_store_models, store_model_path

    with dg.DagsterInstance.get() as instance:
        model_runs = [r for r in instance.get_runs() if r.job_name == "store_models_by_store"]
        assert len(model_runs) == 2 and all(
            r.status == dg.DagsterRunStatus.SUCCESS for r in model_runs
        )
        model_workers = {w.split("@")[0] for r in model_runs
                         for w in _step_workers(instance, r.run_id).values()}  # fmt: skip
        assert model_workers <= set(WORKERS) and model_workers, model_workers
    assert all(store_model_path(s).exists() for s in stores)
    assert sorted(t.group for t in load_store_models()) == stores


def home_config(dagster_home: Path) -> Path:
    """Run config of a small, fast store_models run (every store gets its own model)."""
    path = dagster_home / "store_models.yaml"
    path.write_text(json.dumps({"ops": {"store_models": {"config": {
        "train_start_d": 1, "num_boost_round": 5, "num_threads": 1, "recent_folds": 2,
        "seasonal_lags": [], "min_store_series": 1,
        "extra_params_json": json.dumps({"min_data_in_leaf": 5, "num_leaves": 7}),
    }}}}))  # fmt: skip
    return path
