"""Lazy access to the features table (never fully loaded): rows for model answers."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from forecasting_api.services.errors import LoadError
from forecasting_api.services.forecast_index import epoch_day, strip_suffix
from forecasting_assets import store
from forecasting_assets.modeling.recent import CONTEXT_DAYS, RECENT_COLUMNS, with_recent_features

SMOKE_ROWS = 8
MAX_INDEXED_SERIES = 256  # more series in one fallback: one scan is cheaper than slices
CACHE_BYTES = 64 * 2**20
"""Decoded row groups kept per features table (4 ~100k-row groups at M5 width), and as much
again for the rows of recently asked series (~100 series at M5 width)."""

RECENT_MISSES = 16
"""A row group missed again within this many misses is decoded whole (it is being reused)."""

_Key = tuple[int | str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class SeriesRows:
    """One series' rows and their days (days since 1970, as stored): rows by day, in
    microseconds (a binary search and a zero-copy slice for one day)."""

    frame: pl.DataFrame
    days: np.ndarray
    ordered: bool
    """Whether the days increase strictly (the pipeline writes them so)."""

    @classmethod
    def of(cls, frame: pl.DataFrame) -> SeriesRows:
        days = frame["date"].to_physical().to_numpy()
        return cls(frame, days, len(days) < 2 or bool(np.all(days[1:] > days[:-1])))

    def estimated_size(self) -> int:
        return self.frame.estimated_size() + self.days.nbytes

    def on(self, dates: Sequence[dt.date]) -> pl.DataFrame:
        """The rows of ``dates`` that exist (in day order when the rows are)."""
        if not self.ordered:
            return self.frame.filter(pl.col("date").is_in(dates))
        wanted = np.fromiter((epoch_day(d) for d in dates), np.int64, len(dates))
        at = np.searchsorted(self.days, wanted)
        at = at[(at < len(self.days)) & (self.days[np.minimum(at, len(self.days) - 1)] == wanted)]
        if len(at) == 1:
            return self.frame.slice(int(at[0]), 1)
        return self.frame[np.sort(at)]


class _FrameCache:
    """LRU of frames (anything with ``estimated_size()``), bounded in bytes (thread-safe; a
    frame is computed unlocked)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[_Key, Any] = OrderedDict()
        self._bytes = 0
        self._missed: OrderedDict[_Key, None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _Key) -> Any:
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
            return got

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def missed_before(self, key: _Key) -> bool:
        """Whether ``key`` is among the last :data:`RECENT_MISSES` keys asked here (and note it)."""
        with self._lock:
            seen = key in self._missed
            self._missed[key] = None
            self._missed.move_to_end(key)
            while len(self._missed) > RECENT_MISSES:
                self._missed.popitem(last=False)
            return seen

    def put(self, key: _Key, frame: Any) -> None:
        size = frame.estimated_size()
        with self._lock:
            if key in self._items or size > self.max_bytes:
                return
            self._items[key] = frame
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._items.popitem(last=False)[1].estimated_size()


@dataclass(frozen=True, eq=False)
class FeatureSource:
    """Lazy access to ``assets/features.parquet`` (never fully loaded into memory).

    ``runs`` maps a file id to its (first row, row count) when each series' rows are
    contiguous (the pipeline writes the table sorted by id, date): a fallback then reads
    only the row groups of the requested series instead of scanning the whole table.

    A parquet reader decodes a row group's column chunks whole, whichever rows are wanted, so
    a row group asked for again is kept decoded (``groups``: their boundaries, the first row
    of each, then the row count), and so are the rows of recently asked series, each within
    :data:`CACHE_BYTES`.
    """

    version: str
    path: Path
    loaded_at: dt.datetime
    columns: tuple[str, ...]
    series: dict[str, tuple[str, str]]
    min_date: dt.date
    max_date: dt.date
    history_end: dt.date | None
    runs: dict[str, tuple[int, int]] | None = None
    schema: dict[str, pl.DataType] = field(default_factory=dict)
    groups: tuple[int, ...] = ()
    cache: _FrameCache = field(default_factory=lambda: _FrameCache(CACHE_BYTES), repr=False)
    series_cache: _FrameCache = field(default_factory=lambda: _FrameCache(CACHE_BYTES), repr=False)

    @classmethod
    def load(cls) -> FeatureSource | None:
        """Scan the table's schema, date range and series; ``None`` if not materialized."""
        path = store.features_path()
        version = store.file_version(path)
        if version is None:
            return None
        try:
            lf = pl.scan_parquet(path)
            schema = lf.collect_schema()
            if not {"id", "date"} <= set(schema.names()):
                raise LoadError(f"{path.name}: needs columns id and date")
            aggs = [pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")]
            if "sales" in schema.names():
                aggs.append(pl.col("date").filter(pl.col("sales").is_not_null()).max().alias("he"))
            rng = lf.select(aggs).collect()
            cols = ["id"] + [c for c in ("item_id", "store_id") if c in schema.names()]
            keys = (
                lf.filter(pl.col("date") == rng["hi"][0])
                .select(pl.col(c).cast(pl.String) for c in cols)
                .unique()
                .collect()
            )
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from exc
        if rng["lo"][0] is None:
            raise LoadError(f"{path.name}: no rows")
        series: dict[str, tuple[str, str]] = {}
        for row in keys.iter_rows(named=True):
            sid = strip_suffix(row["id"])
            if "item_id" in row and "store_id" in row:
                series[sid] = (row["item_id"], row["store_id"])
            else:
                parts = sid.rsplit("_", 2)
                series[sid] = (parts[0], "_".join(parts[1:])) if len(parts) == 3 else (sid, "")
        return cls(
            version=version,
            path=path,
            loaded_at=dt.datetime.now(dt.UTC),
            columns=tuple(schema.names()),
            series=series,
            min_date=rng["lo"][0],
            max_date=rng["hi"][0],
            history_end=rng["he"][0] if "he" in rng.columns else None,
            runs=_series_runs(lf),
            groups=_group_bounds(path),
            schema=dict(schema),
        )

    def missing(self, columns: Sequence[str]) -> list[str]:
        """Columns :meth:`fetch` cannot give: not in the table and not computable from it."""
        derived = set(RECENT_COLUMNS) if {"sales", "is_launched"} <= set(self.columns) else set()
        return [c for c in columns if c not in self.columns and c not in derived]

    def fetch(self, pairs: Sequence[tuple[str, dt.date]], columns: Sequence[str]) -> pl.DataFrame:
        """Rows for the (series id, date) pairs: columns ``id`` (String), ``date`` + ``columns``.

        Recent-sales features the table does not hold (the recursive model's inputs) are computed
        from the :data:`CONTEXT_DAYS` days before each date, as in training.
        """
        wanted = list(dict.fromkeys(pairs))
        recent = [c for c in columns if c in RECENT_COLUMNS and c not in self.columns]
        cols = ["date", *[c for c in columns if c not in ("id", "date", *recent)]]
        extra = [c for c in ("sales", "is_launched") if recent and c not in cols]
        days: dict[str, list[dt.date]] = {}
        for sid, d in wanted:
            days.setdefault(sid, []).append(d)
        if recent:  # one grid: every series from CONTEXT_DAYS before the first date to the last
            lo, hi = min(d for _, d in wanted), max(d for _, d in wanted)
            span = _day_range(lo - dt.timedelta(days=CONTEXT_DAYS), hi)
            days = dict.fromkeys(days, span)
        rows = self._fetch_slices(days, [*cols, *extra])
        if rows is not None and not recent:
            return rows  # exactly the wanted rows
        if rows is None:
            dates = {d for ds in days.values() for d in ds}
            rows = self._fetch_scan(list(days), list(dates), [*cols, *extra])
        if recent:
            rows = with_recent_features(rows, day="date")
        want = pl.DataFrame(
            {"id": [p[0] for p in wanted], "date": [p[1] for p in wanted]},
            schema={"id": pl.String, "date": pl.Date},
        )
        return want.join(rows.select("id", *cols, *recent), on=["id", "date"], how="inner")

    def _fetch_slices(self, days: dict[str, list[dt.date]], cols: list[str]) -> pl.DataFrame | None:
        """The given days of each series, from its rows in the decoded row groups; ``None``:
        scan instead.

        The ids are not read: a range holds one series in the file version the ranges were
        taken from, which is checked after each decode (the file is replaced by rename).
        """
        if self.runs is None or len(days) > MAX_INDEXED_SERIES:
            return None
        parts = []
        for sid, ds in days.items():
            run = self.runs.get(sid)
            if run is not None:
                parts.append(self._series_rows(sid, run, tuple(cols)).on(ds))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pl.concat(parts)

    def _series_rows(self, sid: str, run: tuple[int, int], cols: tuple[str, ...]) -> SeriesRows:
        """All rows of series ``sid`` (``id`` + ``cols``), kept as a copy (not a view of its
        groups)."""
        got = self.series_cache.get((sid, cols))
        if got is None:
            rows = self._rows(*run, cols)
            frame = rows[np.arange(rows.height)].select(  # a gather copies: no group kept alive
                pl.lit(sid, pl.String).alias("id"), *cols
            )
            got = SeriesRows.of(frame)
            self.series_cache.put((sid, cols), got)
        return got

    def _rows(self, first: int, n: int, cols: tuple[str, ...]) -> pl.DataFrame:
        """Rows ``first`` to ``first + n`` (``cols``). A row group missed a second time
        recently is decoded whole and kept; otherwise only these rows are read."""
        bounds = self.groups
        if len(bounds) < 2:  # row groups unknown
            return self._read_rows(first, n, cols)
        g = bisect.bisect_right(bounds, first) - 1
        parts = []
        while n > 0 and g + 1 < len(bounds):
            lo, hi = bounds[g], bounds[g + 1]
            group = self.cache.get((g, cols))
            if group is None and self.cache.missed_before((g, cols)):
                group = self._read_rows(lo, hi - lo, cols)
                self.cache.put((g, cols), group)
            if group is None:
                take = self._read_rows(first, min(n, hi - first), cols)
            else:
                take = group.slice(first - lo, n)
            parts.append(take)
            first, n, g = first + take.height, n - take.height, g + 1
        return parts[0] if len(parts) == 1 else pl.concat(parts)

    def _read_rows(self, start: int, n: int, cols: tuple[str, ...]) -> pl.DataFrame:
        got = pl.scan_parquet(self.path).slice(start, n).select(cols).collect()
        if store.file_version(self.path) != self.version:
            raise LoadError(f"{self.path.name}: replaced while reading; reloading")
        return got

    def _fetch_scan(self, ids: list[str], dates: list[dt.date], cols: list[str]) -> pl.DataFrame:
        return (
            pl.scan_parquet(self.path)
            .filter(pl.col("date").is_in(pl.Series(dates, dtype=pl.Date).unique().implode()))
            .with_columns(pl.col("id").cast(pl.String))
            .filter(pl.col("id").is_in(pl.Series(ids, dtype=pl.String).implode()))
            .select("id", *cols)
            .collect()
        )

    def sample(self, columns: Sequence[str], n: int = SMOKE_ROWS) -> pl.DataFrame:
        """A few rows near the end of history (used to smoke-test a model)."""
        day = self.history_end or self.max_date
        ids = (
            pl.scan_parquet(self.path)
            .filter(pl.col("date") == day)
            .head(n)
            .select(pl.col("id").cast(pl.String))
            .collect()["id"]
        )
        return self.fetch([(i, day) for i in ids], columns).select(list(columns))


def _group_bounds(path: Path) -> tuple[int, ...]:
    """Row-group boundaries of the parquet file at ``path``: each group's first row, then
    the row count."""
    meta = pq.read_metadata(path)
    sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    return (0, *np.cumsum(sizes, dtype=np.int64).tolist())


def _series_runs(lf: pl.LazyFrame) -> dict[str, tuple[int, int]] | None:
    """(first row, row count) of every id whose rows are contiguous; ``None`` if one is not.

    One run-length pass over the (dictionary-encoded) id column: about 0.3 s for 10 M rows.
    """
    runs = lf.select(pl.col("id").rle().alias("r")).unnest("r").collect()
    ids = runs["value"].cast(pl.String)
    if ids.n_unique() != runs.height:  # an id in several places: not sorted by id
        return None
    lengths = runs["len"].to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return {
        sid: (int(a), int(n))
        for sid, a, n in zip(ids.to_list(), starts.tolist(), lengths.tolist(), strict=True)
    }


def _day_range(lo: dt.date, hi: dt.date) -> list[dt.date]:
    """Every day from ``lo`` to ``hi`` (both included)."""
    return [lo + dt.timedelta(days=k) for k in range((hi - lo).days + 1)]
