"""Building the full feature table store by store, streaming it to Parquet.

Every feature is per series or keyed within a store, so the table is built one store at a time
(about 6M rows at full M5 size) and streamed to a single Parquet file through a polars IO source:
peak memory stays at one store's worth instead of the whole 60M-row table, and the next store is
computed while the previous one is being encoded.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import polars as pl

from forecasting_assets.features.build import (
    FeatureContext,
    build_features,
    feature_context,
)
from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.lazy_source import lazy_from_batches

logger = logging.getLogger(__name__)


def store_ids(sales_long: pl.LazyFrame | pl.DataFrame) -> list[str]:
    """Stores in order of first appearance (the table's partition keys)."""
    return [s for s, _ in store_parts(sales_long)]


def store_parts(sales_long: pl.LazyFrame | pl.DataFrame) -> list[tuple[str, pl.LazyFrame]]:
    """(store, its rows) in order of first appearance.

    Stores that occupy one contiguous block of rows (the normal, store-sorted layout) are cut out
    with ``slice`` (a Parquet scan then reads only those row groups); otherwise with a filter.
    """
    lf = sales_long.lazy()
    blocks = (
        lf.select("store_id")
        .with_row_index("_row")
        .group_by("store_id", maintain_order=True)
        .agg(pl.col("_row").min().alias("lo"), pl.col("_row").max().alias("hi"), pl.len())
        .collect()
    )
    parts = []
    for store, lo, hi, n in blocks.iter_rows():
        if hi - lo + 1 == n:
            parts.append((str(store), lf.slice(lo, n)))
        else:
            parts.append((str(store), lf.filter(pl.col("store_id") == store)))
    return parts


def iter_feature_batches(
    sales_long: pl.LazyFrame | pl.DataFrame,
    cfg: FeatureConfig | None = None,
    context: FeatureContext | None = None,
    stores: list[str] | None = None,
    *,
    workers: int = 1,
) -> Iterator[pl.DataFrame]:
    """Yield the feature table one store at a time, in input order.

    With ``workers > 1``, up to ``workers`` stores are built concurrently in threads (polars
    releases the GIL), so building overlaps with the consumer (e.g. the Parquet writer) and
    uses every core; at most ``workers + 1`` store batches are in memory.
    """
    cfg = cfg or FeatureConfig()
    lf = sales_long.lazy()
    context = context or feature_context(lf, cfg)
    parts = [(s, p) for s, p in store_parts(lf) if stores is None or s in stores]

    def build(store: str, part: pl.LazyFrame) -> pl.DataFrame:
        t0 = time.perf_counter()
        batch = build_features(part, cfg, context=context)
        logger.info(
            "features: store %s, %d rows in %.1fs", store, batch.height, time.perf_counter() - t0
        )
        return batch

    if workers <= 1:
        for store, part in parts:
            yield build(store, part)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="features") as pool:
        pending: deque[Future[pl.DataFrame]] = deque()
        todo = iter(parts)
        for store, part in islice(todo, workers):
            pending.append(pool.submit(build, store, part))
        while pending:
            batch = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(build, *nxt))
            yield batch


def _schema(sales_long: pl.LazyFrame, cfg: FeatureConfig, context: FeatureContext) -> pl.Schema:
    """Output schema, from the features of a single series."""
    n_days = context.calendar.height
    one = build_features(sales_long.slice(0, n_days), cfg, context=context)
    return one.schema


def features_lazy(
    sales_long: pl.LazyFrame | pl.DataFrame,
    cfg: FeatureConfig | None = None,
    *,
    context: FeatureContext | None = None,
    on_batch: Callable[[pl.DataFrame], None] | None = None,
    workers: int = 2,
) -> pl.LazyFrame:
    """The whole feature table as a LazyFrame that streams store batches (for ``sink_parquet``).

    ``on_batch`` sees every complete store batch (e.g. to accumulate summary statistics).
    """
    cfg = cfg or FeatureConfig()
    lf = sales_long.lazy()
    context = context or feature_context(lf, cfg)
    schema = _schema(lf, cfg, context)

    def batches() -> Iterator[pl.DataFrame]:
        for batch in iter_feature_batches(lf, cfg, context, workers=workers):
            if on_batch is not None:
                on_batch(batch)
            yield batch

    return lazy_from_batches(batches, schema, "features_by_store")


@dataclass
class StatsAccumulator:
    """Null share, mean, min and max per numeric column over all batches seen."""

    rows: int = 0
    _acc: dict[str, dict[str, Any]] = field(default_factory=dict)

    def update(self, batch: pl.DataFrame) -> None:
        cols = [c for c, t in batch.schema.items() if t.is_numeric() or t == pl.Boolean]
        if not cols:
            return
        exprs = []
        for c in cols:
            x = pl.col(c).cast(pl.Int8) if batch.schema[c] == pl.Boolean else pl.col(c)
            exprs += [
                x.null_count().alias(f"{c}|nulls"),
                x.mean().alias(f"{c}|mean"),
                x.min().alias(f"{c}|min"),
                x.max().alias(f"{c}|max"),
            ]
        row = batch.select(exprs).row(0, named=True)
        self.rows += batch.height
        for c in cols:
            a = self._acc.setdefault(c, {"nulls": 0, "sum": 0.0, "min": None, "max": None})
            nulls = int(row[f"{c}|nulls"])
            a["nulls"] += nulls
            a["sum"] += float(row[f"{c}|mean"] or 0.0) * (batch.height - nulls)
            for k, fn in (("min", min), ("max", max)):
                v = row[f"{c}|{k}"]
                if v is not None and not math.isnan(v):
                    a[k] = v if a[k] is None else fn(a[k], v)

    def summary(self) -> dict[str, dict[str, float | None]]:
        """{column: {null_share, mean, min, max}} (mean over non-null values)."""
        out: dict[str, dict[str, float | None]] = {}
        for c, a in self._acc.items():
            valid = self.rows - a["nulls"]
            out[c] = {
                "null_share": round(a["nulls"] / self.rows, 6) if self.rows else None,
                "mean": a["sum"] / valid if valid else None,
                "min": a["min"],
                "max": a["max"],
            }
        return out


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_features` wrote."""

    path: Path
    rows: int
    seconds: float
    context: FeatureContext
    stats: dict[str, dict[str, float | None]]


ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
"""Environment variable configuring polars' jemalloc (read once, when polars is loaded)."""

ALLOCATOR_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
"""Keep freed pages for reuse: each store batch allocates ~4 GB of fresh columns, and with the
default decay jemalloc returns them to the OS and page-faults them back for the next store
(measured: ~4 of ~9 CPU-seconds per 6M-row store were kernel time). Used in the isolated child
process only, whose memory is released when it exits."""


def write_features(
    sales_long: pl.LazyFrame | pl.DataFrame,
    path: str | Path,
    cfg: FeatureConfig | None = None,
    *,
    compression: str = "lz4",
    statistics: bool = False,
    encoding_cutoff_d: int | None = None,
    workers: int = 2,
    isolated: bool = False,
) -> WriteResult:
    """Build the feature table store by store and stream it to ``path`` (one Parquet file).

    Defaults favour write speed: lz4 and no column statistics (rows are ordered by series, so
    min/max statistics would not prune row groups for day filters anyway).
    With ``isolated``, the build runs in a fresh (spawned) process whose allocator keeps freed
    pages for reuse (:data:`ALLOCATOR_CONF`); its memory is returned when it exits.
    Not atomic by itself: pass a temporary path (``settings.atomic_write``) for user-facing files.
    """
    kwargs: dict[str, Any] = {
        "compression": compression,
        "statistics": statistics,
        "encoding_cutoff_d": encoding_cutoff_d,
        "workers": workers,
    }
    if not isolated:
        return _write_features(sales_long, path, cfg, **kwargs)
    ctx = multiprocessing.get_context("spawn")
    previous = os.environ.get(ALLOCATOR_ENV)
    os.environ[ALLOCATOR_ENV] = previous or ALLOCATOR_CONF  # inherited by the child at spawn
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            return pool.submit(_write_features, sales_long, path, cfg, **kwargs).result()
    finally:
        if previous is None:
            os.environ.pop(ALLOCATOR_ENV, None)


def _write_features(
    sales_long: pl.LazyFrame | pl.DataFrame,
    path: str | Path,
    cfg: FeatureConfig | None,
    *,
    compression: str,
    statistics: bool,
    encoding_cutoff_d: int | None,
    workers: int,
) -> WriteResult:
    cfg = cfg or FeatureConfig()
    t0 = time.perf_counter()
    lf = sales_long.lazy()
    context = feature_context(lf, cfg, encoding_cutoff_d)
    acc = StatsAccumulator()
    table = features_lazy(lf, cfg, context=context, on_batch=acc.update, workers=workers)
    table.sink_parquet(Path(path), compression=compression, statistics=statistics)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    logger.info("features: wrote %d rows to %s in %.1fs", acc.rows, path, seconds)
    return WriteResult(Path(path), acc.rows, seconds, context, acc.summary())
