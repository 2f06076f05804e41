"""Scale-out code location: features partitioned by store, steps on a distributed executor.

Everything else (assets, checks, jobs, schedules, sensors, resources) is the default location's
(:data:`forecasting_assets.definitions.defs`); its ``features`` asset and whole-table checks are
replaced by the store-partitioned asset and the same checks per partition
(:mod:`forecasting_assets.scaleout`); ``demand_model`` reuses the per-store members of the
store-partitioned ``store_models`` (:mod:`forecasting_assets.scaleout_models`); and the location
adds the ``features_by_store`` and ``store_models_by_store`` jobs, the ``ingest`` job and the
``store_partitions_sensor``.

Executor, chosen by ``SCALEOUT_EXECUTOR`` (``celery`` | ``k8s`` | ``multiprocess``; default:
``celery`` when ``DAGSTER_CELERY_BROKER_URL`` is set, else ``multiprocess``):

* ``celery`` -- steps go to a Redis queue served by ``dagster-celery`` workers on any number of
  machines (``dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml``);
* ``k8s`` -- every step is a Kubernetes Job (``dagster_k8s.k8s_job_executor``; run config in
  deploy/k8s/k8s-executor-run-config.yaml);
* ``multiprocess`` -- one machine, two step processes.

See deploy/SCALING.md.
"""

import os

import dagster as dg

from forecasting_assets import definitions as default_location
from forecasting_assets import scaleout, scaleout_models

BROKER_ENV = "DAGSTER_CELERY_BROKER_URL"
EXECUTOR_ENV = "SCALEOUT_EXECUTOR"
FEATURES = dg.AssetKey("features")
DEMAND_MODEL = dg.AssetKey("demand_model")

store_models_job = dg.define_asset_job(
    "store_models_by_store",
    selection=dg.AssetSelection.assets(scaleout_models.STORE_MODELS),
    description="The demand model's per-store members, one run per partition or partition range; "
    "demand_model (retrain job) then reuses them.",
)

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets("sales_long").upstream(),
    description="Raw files -> validated sales_long; the store_partitions_sensor then fans the "
    "features out per store, and the retrain job (or the nightly schedule) does the rest.",
)


def scaleout_executor() -> dg.ExecutorDefinition:
    """The executor named by ``SCALEOUT_EXECUTOR`` (see the module docstring)."""
    default = "celery" if os.environ.get(BROKER_ENV) else "multiprocess"
    kind = os.environ.get(EXECUTOR_ENV, default).strip().lower()
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": 2})
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if kind != "celery":
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected celery, k8s or multiprocess")
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": {"env": BROKER_ENV},
            "backend": {"env": BROKER_ENV},
            "config_source": dict(scaleout.CELERY_CONFIG_SOURCE),
        }
    )


def build_scaleout_defs(executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """The default location with the store-partitioned ``features`` and ``store_models``, the
    ``demand_model`` that reuses them, and ``executor``."""
    replaced = (FEATURES, DEMAND_MODEL)
    assets = [
        a for a in default_location.defs.assets or [] if not set(getattr(a, "keys", ())) & set(replaced)
    ]  # fmt: skip
    checks = [
        c
        for c in default_location.defs.asset_checks or []
        if not any(key.asset_key == FEATURES for key in c.check_keys)
    ]
    return dg.Definitions(
        assets=[
            *assets,
            scaleout.features_by_store,
            scaleout_models.store_models,
            scaleout_models.demand_model_from_partitions,
        ],
        asset_checks=[*checks, *scaleout.PARTITION_CHECKS],
        jobs=[
            *(default_location.defs.jobs or []),
            scaleout.features_by_store_job,
            store_models_job,
            ingest_job,
        ],
        schedules=default_location.defs.schedules,
        sensors=[*(default_location.defs.sensors or []), scaleout.store_partitions_sensor],
        resources=default_location.defs.resources,
        executor=executor or scaleout_executor(),
        loggers=default_location.defs.loggers,
    )


defs = build_scaleout_defs()
