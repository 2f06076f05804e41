"""Scale-out wiring: the ``features`` asset partitioned by store (outside ``defs/``, which the
default location loads whole; :mod:`forecasting_assets.definitions_scaleout` swaps it in).

Same asset key (``features``) and same table as the default asset in
``forecasting_assets.defs.assets.features``, but one partition per store (the stores come from
the data, see :data:`stores_partitions`), so a backfill fans out as several runs and, with the
Celery (or k8s) executor, each run's step lands on whichever worker is free. Every feature is
keyed within a store and all partitions share one :class:`FeatureContext` computed from the whole
``sales_long`` (calendar, last history day, encoding cutoff), so the union of the partitions is
the same table as the unpartitioned asset's ``features.parquet``.

Files: partition ``S`` is stored at ``<FORECASTING_HOME>/assets/features/S.parquet`` -- the IO
manager's file of that partition (:meth:`AtomicParquetIOManager.asset_path`) -- so unpartitioned downstream assets (``demand_model``,
``batch_forecasts``, ``drift_report``) receive the union of all partitions unchanged.
"""

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from forecasting_assets.contracts import FEATURES_PARTITION_DIR, SALES_LONG_FILE
from forecasting_assets.defs.assets.features import GROUP, FeaturesConfig
from forecasting_assets.defs.checks import check_result
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.features import checks
from forecasting_assets.features.build import build_features, feature_context
from forecasting_assets.features.config import FEATURES_VERSION
from forecasting_assets.features.pipeline import store_ids
from forecasting_assets.settings import atomic_write

log = logging.getLogger(__name__)

STORES = "stores"
PARTITIONS_PER_RUN_ENV = "FEATURES_PARTITIONS_PER_RUN"
DEFAULT_PARTITIONS_PER_RUN = 2
"""Stores per run in a backfill: full M5 (10 stores) -> 5 runs. One store is ~6M rows and
~3.4 GB of peak memory while it is built (measured, deploy/SCALING.md); two per run halve the per-run start-up cost (process,
code location load, one scan of ``sales_long`` for the shared context) while keeping enough
runs to keep two to four workers busy and a failed run cheap to retry."""

CELERY_CONFIG_SOURCE: dict[str, Any] = {"task_acks_late": True, "worker_prefetch_multiplier": 1}
"""Celery settings shared by the executor and the workers (deploy/celery.yaml): one task per
worker at a time, acknowledged when done, so idle workers get the next step and a step whose
worker dies is redelivered."""

stores_partitions = dg.DynamicPartitionsDefinition(name=STORES)
"""One partition per ``store_id`` of ``sales_long``; filled by :func:`register_stores` (the
``store_partitions_sensor`` does it after every ``sales_long`` materialization)."""


def partitions_per_run() -> int:
    """Max partitions per backfill run (env ``FEATURES_PARTITIONS_PER_RUN``, default 2)."""
    return max(1, int(os.environ.get(PARTITIONS_PER_RUN_ENV, DEFAULT_PARTITIONS_PER_RUN)))


def partition_path(store: str, io_manager: AtomicParquetIOManager | None = None) -> Path:
    """Where partition ``store`` lives: the (default) IO manager's file for it."""
    return (io_manager or AtomicParquetIOManager()).asset_path(FEATURES_PARTITION_DIR, store)


def sales_long_path() -> Path:
    """The materialized ``sales_long`` table (the default IO manager's file)."""
    return AtomicParquetIOManager().asset_path(SALES_LONG_FILE.removesuffix(".parquet"))


def register_stores(instance: dg.DagsterInstance, sales_long: pl.LazyFrame) -> list[str]:
    """Add every store of ``sales_long`` missing from the ``stores`` partitions; return them."""
    wanted = store_ids(sales_long)
    known = set(instance.get_dynamic_partitions(STORES))
    new = [s for s in wanted if s not in known]
    if new:
        instance.add_dynamic_partitions(STORES, new)
    return new


def _worker_identity() -> str:
    """``<celery worker name>`` inside a Celery task, else ``<host>:<pid>``."""
    try:
        from celery import current_task

        if current_task and current_task.request.hostname:
            return str(current_task.request.hostname)
    except ImportError:  # pragma: no cover - celery is optional
        pass
    return f"{socket.gethostname()}:{os.getpid()}"


@dg.asset(
    key="features",
    partitions_def=stores_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=partitions_per_run()),
    group_name=GROUP,
    kinds={"polars", "parquet"},
    tags={"features_version": FEATURES_VERSION},
)
def features_by_store(
    context: dg.AssetExecutionContext,
    config: FeaturesConfig,
    sales_long: pl.LazyFrame,
    io_manager: dg.ResourceParam[AtomicParquetIOManager],
) -> dg.MaterializeResult:
    """Model feature table, one partition per store (same columns and values as the
    unpartitioned ``features`` asset; see its description for the feature families).

    A run may hold several stores (backfill policy: at most ``FEATURES_PARTITIONS_PER_RUN``,
    default 2, per run); each store is built and written atomically on its own, so memory stays
    at one store's worth. The shared context (calendar, last history day, encoding cutoff) comes
    from the whole ``sales_long``, which keeps the union of the partitions identical to the
    unpartitioned table. Metadata records which worker built the partition.
    """
    cfg = config.feature_config()
    t0 = time.perf_counter()
    shared = feature_context(sales_long, cfg)
    stores = list(context.partition_keys)
    rows: dict[str, int] = {}
    for store in stores:
        t_store = time.perf_counter()
        table = build_features(sales_long.filter(pl.col("store_id") == store), cfg, context=shared)
        if table.height == 0:
            raise ValueError(f"store {store!r} has no rows in sales_long (stale partition?)")
        path = partition_path(store, io_manager)
        with atomic_write(path) as tmp:
            table.write_parquet(tmp, compression=config.compression, statistics=False)
        rows[store] = table.height
        log.info(
            "features[%s]: %d rows in %.1fs -> %s",
            store, table.height, time.perf_counter() - t_store, path,
        )  # fmt: skip
        del table
    worker = _worker_identity()
    context.log.info("features for %s built by %s", ", ".join(stores), worker)
    metadata: dict[str, Any] = {
        "rows": sum(rows.values()),
        "rows_by_store": dg.MetadataValue.json(rows),
        "path": dg.MetadataValue.path(str(partition_path(stores[0], io_manager).parent)),
        "seconds": round(time.perf_counter() - t0, 2),
        "worker": worker,
        "pid": os.getpid(),
        "features_version": FEATURES_VERSION,
        "last_history_d": shared.last_history_d,
        "encoding_cutoff_d": shared.encoding_cutoff_d,
    }
    return dg.MaterializeResult(metadata=metadata)


features_by_store_job = dg.define_asset_job(
    "features_by_store",
    selection=dg.AssetSelection.assets("features"),
    description="The store-partitioned feature table; one run per partition or partition range.",
)


def chunk_stores(stores: list[str], size: int) -> list[list[str]]:
    """Consecutive groups of at most ``size`` stores (the runs of a backfill)."""
    return [stores[i : i + size] for i in range(0, len(stores), size)]


@dg.asset_sensor(
    asset_key=dg.AssetKey("sales_long"),
    job=features_by_store_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each sales_long materialization: adds new stores to the 'stores' "
    "partitions and requests the partitioned features for every store, in runs of at most "
    "FEATURES_PARTITIONS_PER_RUN stores (the same split as the asset's backfill policy).",
)
def store_partitions_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.SensorResult | dg.SkipReason:
    """Register the stores of the latest ``sales_long`` and request features for them."""
    path = sales_long_path()
    if not path.exists():
        return dg.SkipReason(f"{path} not found")
    stores = store_ids(pl.scan_parquet(path))
    known = set(context.instance.get_dynamic_partitions(STORES))
    new = [s for s in stores if s not in known]
    requests = [
        dg.RunRequest(
            run_key=f"{asset_event.run_id}-{group[0]}-{group[-1]}",
            tags={
                "dagster/asset_partition_range_start": group[0],
                "dagster/asset_partition_range_end": group[-1],
                "trigger": "sales_long",
            },
        )
        for group in chunk_stores(stores, partitions_per_run())
    ]
    return dg.SensorResult(
        dynamic_partitions_requests=[stores_partitions.build_add_request(new)] if new else [],
        run_requests=requests,
    )


# ---------------------------------------------------------------------------------------------
# Checks, per partition (the default asset's checks compare the *whole* table with sales_long,
# which is wrong for one store: the scale-out location replaces them with these, same names).
# ---------------------------------------------------------------------------------------------


def _partitions(context: dg.AssetCheckExecutionContext) -> pl.LazyFrame:
    return pl.scan_parquet([partition_path(s) for s in context.partition_keys])


def partition_rows_outcome(stores: list[str]) -> checks.CheckOutcome:
    """The stored partitions of ``stores`` against those stores' rows in ``sales_long``."""
    want = pl.scan_parquet(sales_long_path()).filter(
        pl.col("store_id").cast(pl.String).is_in(stores)
    )
    return checks.check_rows_match(pl.scan_parquet([partition_path(s) for s in stores]), want)


@dg.asset_check(
    asset=features_by_store,
    name="features_rows_match_sales_long",
    partitions_def=stores_partitions,
    blocking=True,
    additional_deps=[dg.AssetKey("sales_long")],
    description="The partition has exactly the rows, series and days of its store in sales_long.",
)
def features_partition_rows_match(
    context: dg.AssetCheckExecutionContext,
) -> dg.AssetCheckResult:
    """Row count, series count and day range equal those of the store(s) in sales_long."""
    return check_result(partition_rows_outcome(list(context.partition_keys)))


@dg.asset_check(
    asset=features_by_store,
    name="features_horizon_direct_inputs",
    partitions_def=stores_partitions,
    blocking=True,
    description="Horizon rows have every lag>=28 / rolling feature where history exists.",
)
def features_partition_horizon_inputs(
    context: dg.AssetCheckExecutionContext,
) -> dg.AssetCheckResult:
    """The direct model can score every horizon day of every launched series of the store."""
    return check_result(checks.check_horizon_features(_partitions(context)))


@dg.asset_check(
    asset=features_by_store,
    name="features_schema_complete",
    partitions_def=stores_partitions,
    description="All catalogued columns exist.",
)
def features_partition_schema(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Schema against the catalog (non-blocking warning)."""
    return check_result(checks.check_schema(_partitions(context)), warn=True)


PARTITION_CHECKS = [
    features_partition_rows_match,
    features_partition_horizon_inputs,
    features_partition_schema,
]
