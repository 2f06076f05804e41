"""Reads of one store, series or item of ``sales_long`` through only the row groups that can
hold it.

``sales_long`` stores ``store_id`` and ``item_id`` as Enums, and polars prunes no row group on an
Enum predicate (nor does ``pyarrow.dataset`` on their dictionary columns): a filtered
``scan_parquet`` decodes every row group. The Parquet footer statistics (min/max of ``store_id``
and ``item_id``) say which groups can hold a value: at M5 scale a store is 49 contiguous row groups
of 488, a series 1-2, an item ~2 in every store. Reading only those is 5-10x faster at full scale
than a filtered scan (see ``dashboard/README.md``). ``path`` is one file or a glob of partitions;
``version`` is its version token (a cache key).
"""

from __future__ import annotations

import functools
import glob
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import streamlit as st

from dashboard.paths import TTL

KEYS = ("store_id", "item_id")


def _stat(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=2)
def row_groups(path: str, version: str) -> pl.DataFrame:
    """Per row group: file, index, first row, rows, footer min/max of each of ``KEYS``.

    min/max are null when the footer has no usable statistics (the group is then always read);
    Parquet orders string statistics lexicographically, not in the Enum's order.
    """
    del version
    records: list[dict[str, Any]] = []
    for file in [path] if Path(path).is_file() else sorted(glob.glob(path)):
        meta = pq.read_metadata(file)
        cols = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
        offset = 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            rec: dict[str, Any] = {
                "file": file,
                "group": g,
                "offset": offset,
                "rows": group.num_rows,
            }
            for key in KEYS:
                stats = group.column(cols[key]).statistics if key in cols else None
                lo, hi = (
                    (_stat(stats.min), _stat(stats.max))
                    if stats is not None and stats.has_min_max
                    else (None, None)
                )
                ok = lo is not None and hi is not None and lo <= hi
                rec[f"{key}_min"], rec[f"{key}_max"] = (lo, hi) if ok else (None, None)
            records.append(rec)
            offset += group.num_rows
    schema = {"file": pl.String, "group": pl.Int64, "offset": pl.Int64, "rows": pl.Int64}
    schema |= {f"{k}_{m}": pl.String for k in KEYS for m in ("min", "max")}
    return pl.DataFrame(records, schema=schema)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=2)
def schema(path: str, version: str) -> pl.Schema:
    del version
    return pl.scan_parquet(path).collect_schema()


def categories(path: str, version: str, column: str) -> list[str] | None:
    """Values of an Enum column (from the schema), None if it is no Enum."""
    dtype = schema(path, version).get(column)
    return dtype.categories.to_list() if isinstance(dtype, pl.Enum) else None


def _groups(path: str, version: str, **keys: str) -> pl.DataFrame:
    """The row groups whose statistics can hold rows with these ``keys`` values (none if a value
    is not in the column's Enum)."""
    groups = row_groups(path, version)
    for key, value in keys.items():
        cats = categories(path, version, key)
        if cats is not None and value not in cats:
            return groups.clear()
        lo, hi = pl.col(f"{key}_min"), pl.col(f"{key}_max")
        groups = groups.filter(lo.is_null() | ((lo <= value) & (hi >= value)))
    return groups


def scan(path: str, version: str, **keys: str) -> pl.LazyFrame:
    """Rows with ``store_id``/``item_id`` equal to ``keys``, for contiguous row groups (a store, a
    series): polars slices of the groups that can hold them (adjacent groups make one slice)."""
    runs: list[list[Any]] = []  # [file, offset, rows]
    for file, offset, rows in (
        _groups(path, version, **keys).select("file", "offset", "rows").iter_rows()
    ):
        if runs and runs[-1][0] == file and runs[-1][1] + runs[-1][2] == offset:
            runs[-1][2] += rows
        else:
            runs.append([file, offset, rows])
    if not runs:
        return pl.scan_parquet(path).clear()
    lf = pl.concat([pl.scan_parquet(f).slice(o, n) for f, o, n in runs])
    return lf.filter(*(pl.col(k) == v for k, v in keys.items()))


def read_scattered(path: str, version: str, columns: list[str], **keys: str) -> pl.DataFrame:
    """``columns`` of the rows matching ``keys``, for row groups scattered over the file (an item:
    ~2 per store). pyarrow reads them all with one footer parse per file, where a polars slice per
    group would re-read the footer each time (~3x slower at M5 scale)."""
    tables = []
    groups = _groups(path, version, **keys)
    for file, idx in groups.group_by("file", maintain_order=True).agg("group").iter_rows():
        table = pq.ParquetFile(file).read_row_groups(
            idx, columns=list(dict.fromkeys([*keys, *columns]))
        )
        mask = functools.reduce(pc.and_, [pc.equal(table[k], v) for k, v in keys.items()])
        tables.append(table.filter(mask).select(columns))
    if not tables:
        full = schema(path, version)
        return pl.DataFrame(schema={c: full[c] for c in columns})
    return pl.from_arrow(pa.concat_tables(tables))  # type: ignore[return-value]
