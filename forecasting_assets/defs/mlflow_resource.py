"""MLflow as a Dagster resource (resource key ``"mlflow"``), on top of ``dagster-mlflow``.

One tracking URI for the pipeline, the API and the dashboard: by default
``forecasting_assets.settings.get_settings().mlflow_tracking_uri`` (SQLite under
``FORECASTING_HOME``), read when the resource is used.

Inside a Dagster run, :meth:`MLflowResource.start_run` opens *one* MLflow run per Dagster run,
shared by every step that logs to it and tagged ``dagster_run_id``: dagster-mlflow's ``MlFlow``
tracker (the object behind its ``mlflow_tracking`` resource) finds or starts it. The run is
ended with the Dagster run's outcome, whatever launched it (job, UI, ``dagster asset
materialize``):

- by dagster-mlflow's ``end_mlflow_on_run_finished`` hook on the jobs (:data:`end_mlflow_on_run_finished`);
- and always by this resource's teardown: ``FAILED`` if any step of the run failed, else
  ``FINISHED``. Asset materializations (UI, CLI) get no job hooks, and the hook may end the run
  before the last step that logs (dagster-io/dagster#21872): a later :meth:`start_run`
  re-activates the run, and the teardown ends it again.

The first :meth:`start_run` of a Dagster run also marks ``KILLED`` the runs of the experiment
left ``RUNNING`` by Dagster runs that are no longer in progress (a killed run worker ends
nothing). Outside a Dagster run (tests, notebooks) :meth:`start_run` opens its own run and ends
it on exit: ``FINISHED``, or ``FAILED`` when the body raises.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.definitions.decorators.hook_decorator import event_list_hook
from pydantic import PrivateAttr

from forecasting_assets.contracts import EXPERIMENT_NAME, sqlite_path
from forecasting_assets.settings import get_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

DAGSTER_RUN_TAG = "dagster_run_id"
"""The tag dagster-mlflow puts on the MLflow run of a Dagster run."""
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"


def _default_artifact_root(uri: str) -> str | None:
    """Artifacts next to a SQLite DB (``<dir of db>/mlartifacts``); None for servers."""
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def end_orphaned_runs(
    client: MlflowClient, experiment_ids: Iterable[str], in_progress: Callable[[str], bool]
) -> list[str]:
    """Mark ``KILLED`` every ``RUNNING`` run of the experiments whose Dagster run is over.

    A run is orphaned when its ``dagster_run_id`` tag names a Dagster run for which
    ``in_progress`` is false, or when it has no such tag (nothing live owns it). Returns the ids
    of the runs marked.
    """
    killed = []
    runs = client.search_runs(
        list(experiment_ids), filter_string=f"attributes.status = '{RUNNING}'", max_results=1000
    )
    for run in runs:
        owner = run.data.tags.get(DAGSTER_RUN_TAG)
        if owner is not None and in_progress(owner):
            continue
        client.set_tag(run.info.run_id, "ended_by", "orphan cleanup: its Dagster run is over")
        client.set_terminated(run.info.run_id, status=KILLED)
        killed.append(run.info.run_id)
    if killed:
        logger.warning("marked %d orphaned MLflow run(s) KILLED: %s", len(killed), killed)
    return killed


def dagster_run_in_progress(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True while the Dagster run ``run_id`` is queued, starting, started or cancelling."""
    run = instance.get_run_by_id(run_id)
    return run is not None and not run.is_finished


def end_runs_of(client: MlflowClient, experiment_id: str, dagster_run_id: str, status: str) -> int:
    """End (with ``status``) the ``RUNNING`` MLflow runs of one Dagster run; returns how many."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = '{RUNNING}' and tags.{DAGSTER_RUN_TAG} = "
        f"'{dagster_run_id}'",
    )
    for run in runs:
        client.set_terminated(run.info.run_id, status=status)
    return len(runs)


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking + registry access: one shared MLflow run per Dagster run, always ended."""

    tracking_uri: str | None = None
    """Tracking URI; None = settings.mlflow_tracking_uri (env MLFLOW_TRACKING_URI or SQLite)."""
    experiment_name: str = EXPERIMENT_NAME
    artifact_root: str | None = None
    """Artifact location of a newly created experiment; None = ``mlartifacts`` beside the DB."""

    _init: Any = PrivateAttr(default=None)
    """The InitResourceContext of the Dagster run this resource serves (None outside runs)."""
    _run_id: str | None = PrivateAttr(default=None)
    """The shared MLflow run, once :meth:`start_run` opened it."""

    # ------------------------------------------------------------------ lifecycle
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._init = context if context.run is not None else None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._run_id is not None and self._init is not None:
            failed = context.instance.get_records_for_run(
                self._init.run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1
            ).records
            self.end_run(FAILED if failed else FINISHED)
        self._init, self._run_id = None, None

    # ------------------------------------------------------------------ access
    def resolved_uri(self) -> str:
        """The tracking URI this resource uses now."""
        return self.tracking_uri or get_settings().mlflow_tracking_uri

    def client(self) -> MlflowClient:
        """A client on this resource's tracking and registry URI (also set as mlflow's default)."""
        import mlflow  # deferred: importing mlflow takes seconds

        uri = self.resolved_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    def setup(self) -> str:
        """Point mlflow at the store and make sure the experiment exists; returns its id."""
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment_name)
        if exp is not None:
            return exp.experiment_id
        location = self.artifact_root or _default_artifact_root(self.resolved_uri())
        try:
            return client.create_experiment(self.experiment_name, artifact_location=location)
        except Exception:  # created concurrently by another process
            exp = client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                raise
            return exp.experiment_id

    # ------------------------------------------------------------------ runs
    @contextlib.contextmanager
    def start_run(
        self, run_name: str | None = None, tags: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """The active MLflow run for the body: the Dagster run's shared run, or a run of its own.

        If the body raises, the run is ended ``FAILED`` (a retried step re-activates it).
        """
        import mlflow

        experiment_id = self.setup()
        stale = mlflow.active_run()
        if stale is not None and stale.info.run_id != self._run_id:  # left by a crash here
            logger.warning("ending stale MLflow run %s", stale.info.run_id)
            mlflow.end_run(status=KILLED)
        if self._init is None:
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
        else:
            run = self._activate_shared_run(experiment_id, run_name)
            if tags:
                mlflow.set_tags(tags)
        try:
            yield run
        except BaseException:
            self.end_run(FAILED) if self._init is not None else mlflow.end_run(status=FAILED)
            raise
        if self._init is None:
            mlflow.end_run(status=FINISHED)

    def end_run(self, status: str = FINISHED) -> None:
        """End the shared run (dagster-mlflow's hook calls this); a no-op when none is open."""
        import mlflow

        if self._run_id is None:
            return
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self._run_id:
            mlflow.end_run(status=status)
        elif self.client().get_run(self._run_id).info.status == RUNNING:
            self.client().set_terminated(self._run_id, status=status)

    def _activate_shared_run(self, experiment_id: str, run_name: str | None) -> Any:
        import mlflow

        if self._run_id is None:
            end_orphaned_runs(
                self.client(),
                [experiment_id],
                lambda run_id: dagster_run_in_progress(self._init.instance, run_id),
            )
            with warnings.catch_warnings():  # dagster-mlflow is marked beta
                warnings.simplefilter("ignore", dg.BetaWarning)
                tracker = self._tracker()
            self._run_id = str(tracker.mlflow_run_id or mlflow.active_run().info.run_id)
            if run_name:
                mlflow.set_tag("mlflow.runName", run_name)
        active = mlflow.active_run()
        if active is None or active.info.run_id != self._run_id:  # ended early by the hook
            return mlflow.start_run(run_id=self._run_id)
        return active

    def _tracker(self) -> Any:
        """dagster-mlflow's tracker for this Dagster run, configured like ``mlflow_tracking``."""
        from dagster_mlflow.resources import MlFlow

        return MlFlow(
            SimpleNamespace(
                log=self._init.log,
                dagster_run=self._init.run,
                run_id=self._init.run.run_id,
                resource_config={
                    "experiment_name": self.experiment_name,
                    "mlflow_tracking_uri": self.resolved_uri(),
                    "env": {},
                    "extra_tags": {},
                },
            )
        )


@event_list_hook(name="end_mlflow_on_run_finished", required_resource_keys={"mlflow"})
def end_mlflow_on_run_finished(
    context: dg.HookContext, event_list: list[Any]
) -> dg.HookExecutionResult:
    """dagster-mlflow's ``end_mlflow_on_run_finished``, imported when it first fires.

    Importing dagster_mlflow imports mlflow (about 3 s and 160 MB), which every code-location,
    sensor and run process would pay at load time; the hook itself is dagster-mlflow's.
    """
    from dagster_mlflow import end_mlflow_on_run_finished as hook

    return hook.decorated_fn(context, event_list)
