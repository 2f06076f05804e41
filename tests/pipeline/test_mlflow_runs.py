"""One MLflow run per Dagster run, shared by the steps that log to it and always ended:
FINISHED on success, FAILED on failure, whether a job (with dagster-mlflow's hook) or a plain
asset materialization (in process, or the `dagster asset materialize` CLI) ran it; runs left
RUNNING by dead Dagster runs are marked KILLED by the next one."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from forecasting_assets.contracts import EXPERIMENT_NAME
from forecasting_assets.defs.mlflow_resource import DAGSTER_RUN_TAG, MLflowResource

pytestmark = pytest.mark.slow  # MLflow store + Dagster runs: ~5 s per test

LOCATION = Path(__file__).with_name("tiny_location.py")
REPO = Path(__file__).resolve().parents[2]


def _load_location():
    spec = importlib.util.spec_from_file_location("tiny_location", LOCATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny = _load_location()


@pytest.fixture
def client(mlflow_store: str) -> mlflow.MlflowClient:
    return MLflowResource().client()


def runs_of(client: mlflow.MlflowClient, dagster_run_id: str | None = None) -> list:
    exp = client.get_experiment_by_name(EXPERIMENT_NAME)
    if exp is None:
        return []
    query = f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'" if dagster_run_id else ""
    return client.search_runs([exp.experiment_id], filter_string=query)


def all_runs(client: mlflow.MlflowClient) -> list:
    """Every run in every experiment (a stray fluent-API run lands in 'Default')."""
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids)


def materialize(instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [tiny.tracked, tiny.after],
        resources={"mlflow": MLflowResource()},
        instance=instance,
        run_config={"ops": {"tracked": {"config": config}}},
        raise_on_error=False,
    )


def test_materialization_shares_one_run_and_ends_it_finished(
    client: mlflow.MlflowClient,
) -> None:
    with dg.instance_for_test() as instance:
        result = materialize(instance)
    assert result.success
    (run,) = runs_of(client, result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"tracked": 1.0, "after": 2.0}  # both steps, one run
    assert run.data.tags["mlflow.runName"] == "tracked" and run.data.tags["stage"] == "tracked"
    assert len(all_runs(client)) == 1


def test_failed_materialization_ends_its_run_failed(client: mlflow.MlflowClient) -> None:
    with dg.instance_for_test() as instance:
        result = materialize(instance, fail=True)
    assert not result.success
    (run,) = runs_of(client, result.run_id)
    assert run.info.status == "FAILED"
    assert "after" not in run.data.metrics


def test_job_with_dagster_mlflow_hook_ends_finished_or_failed(
    client: mlflow.MlflowClient,
) -> None:
    job = dg.Definitions(
        assets=[tiny.tracked, tiny.after],
        jobs=[tiny.tiny_job],
        resources={"mlflow": MLflowResource()},
    ).resolve_job_def("tiny")
    assert "end_mlflow_on_run_finished" in {h.name for h in job.hook_defs}
    with dg.instance_for_test() as instance:
        ok = job.execute_in_process(instance=instance)
        failed = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"tracked": {"config": {"fail": True}}}},
            raise_on_error=False,
        )
    assert ok.success and not failed.success
    (run,) = runs_of(client, ok.run_id)
    assert run.info.status == "FINISHED" and set(run.data.metrics) == {"tracked", "after"}
    assert runs_of(client, failed.run_id)[0].info.status == "FAILED"
    assert len(all_runs(client)) == 2


@dg.asset(deps=[tiny.tracked])
def ender(mlflow: MLflowResource) -> None:
    """Ends the shared run mid-run, as dagster-mlflow's hook may (dagster-io/dagster#21872)."""
    mlflow.end_run()


def test_run_ended_early_is_reactivated_by_later_steps(client: mlflow.MlflowClient) -> None:
    @dg.asset(deps=[ender])
    def late(mlflow: MLflowResource) -> None:
        import mlflow as mlf

        with mlflow.start_run():
            mlf.log_metric("late", 3.0)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [tiny.tracked, ender, late], resources={"mlflow": MLflowResource()}, instance=instance
        )
    assert result.success
    (run,) = runs_of(client, result.run_id)
    assert run.info.status == "FINISHED" and set(run.data.metrics) == {"tracked", "late"}
    assert len(all_runs(client)) == 1  # no stray run from logging without an active run


def test_runs_left_running_by_dead_dagster_runs_are_killed_by_the_next(
    client: mlflow.MlflowClient,
) -> None:
    experiment_id = MLflowResource().setup()
    with dg.instance_for_test() as instance:
        dead = instance.create_run_for_job(tiny.defs.resolve_job_def("tiny"))
        instance.report_run_failed(dead, "killed")
        live = instance.create_run_for_job(tiny.defs.resolve_job_def("tiny"))
        orphan = client.create_run(experiment_id, tags={DAGSTER_RUN_TAG: dead.run_id}).info
        untagged = client.create_run(experiment_id).info
        running = client.create_run(experiment_id, tags={DAGSTER_RUN_TAG: live.run_id}).info
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        result = materialize(instance)
    assert result.success
    status = [client.get_run(r.run_id).info.status for r in (orphan, untagged, running)]
    assert status == ["KILLED", "KILLED", "RUNNING"]  # the last one's Dagster run is not over


def test_standalone_start_run_ends_its_own_run(client: mlflow.MlflowClient) -> None:
    resource = MLflowResource()
    with resource.start_run(run_name="notebook") as run:
        mlflow.log_metric("x", 1.0)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    with pytest.raises(ValueError), resource.start_run(run_name="broken") as run:
        raise ValueError("boom")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True])
def test_cli_asset_materialize_ends_the_run(
    fail: bool, client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(REPO)}
    config = json.dumps({"ops": {"tracked": {"config": {"fail": fail}}}})
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
         "-f", str(LOCATION), "--select", "*", "--config-json", config],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (proc.returncode != 0) == fail, proc.stderr[-3000:]
    (run,) = runs_of(client)
    assert run.info.status == ("FAILED" if fail else "FINISHED")
    assert run.data.tags[DAGSTER_RUN_TAG]
