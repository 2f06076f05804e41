"""Cached, read-only data access for the dashboard.

Exports and the champion model come through ``forecasting_assets.store`` (shared with the API)
when it is importable, with plain Parquet/JSON readers as a fallback. Every cached reader is keyed
on the file's path and version (mtime + size), so a new materialization shows up on the next rerun,
and expires after ``TTL`` seconds. Large frames use ``st.cache_resource`` (shared, not copied on
each access: the pages never mutate them); small results use ``st.cache_data``.

History comes from ``<FORECASTING_HOME>/assets/sales_long.parquet``, scanned lazily: aggregates
over the last ``WINDOW_DAYS`` days come from one store × department × day cube; one store, series
or item is read through only the row groups whose footer statistics can hold it (see "history"
below). MLflow information is read straight from the SQLite tracking store when the URI is
``sqlite:///`` (importing mlflow alone takes ~4 s), otherwise through the store module.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

log = logging.getLogger(__name__)

TTL = 60
WINDOW_DAYS = 364
EXPERIMENT = "m5-forecasting"
MODEL_NAME = "m5_demand_model"
LEVELS = {  # dashboard level -> (sales_long column, forecasts_aggregated level name)
    "Total": (None, "total"),
    "State": ("state_id", "state"),
    "Store": ("store_id", "store"),
    "Category": ("cat_id", "cat"),
    "Department": ("dept_id", "dept"),
}
HIER = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
RUN_HINT = (
    "make demo",
    "dagster asset materialize -m forecasting_assets.definitions --select '*'",
)


# ----------------------------------------------------------------------------- paths & versions
def _store() -> Any | None:
    try:
        from forecasting_assets import store
    except ImportError:
        return None
    return store


def home_dir() -> Path:
    """FORECASTING_HOME as the pipeline resolves it."""
    try:
        from forecasting_assets.settings import get_settings
    except ImportError:
        return Path(os.environ.get("FORECASTING_HOME", "data")).resolve()
    return Path(get_settings().home)


def exports_dir() -> Path:
    """Folder of the user-facing exports."""
    s = _store()
    if s is not None and hasattr(s, "exports_dir"):
        return Path(s.exports_dir())
    return home_dir() / "exports"


def sales_long_path() -> Path:
    return home_dir() / "assets" / "sales_long.parquet"


def calendar_path() -> Path:
    return home_dir() / "assets" / "raw_calendar.parquet"


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    try:
        from forecasting_assets.settings import get_settings
    except ImportError:
        return f"sqlite:///{home_dir() / 'mlflow.db'}"
    return str(get_settings().mlflow_tracking_uri)


def file_version(path: Path) -> str | None:
    """Version token of a file (None when absent): changes whenever the file is rewritten."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return f"{stat.st_mtime_ns}-{stat.st_size}"


def _as_polars(obj: Any) -> pl.DataFrame | None:
    if obj is None:
        return None
    if isinstance(obj, pl.LazyFrame):
        obj = obj.collect()
    if not isinstance(obj, pl.DataFrame):
        try:
            obj = pl.from_pandas(obj)
        except (TypeError, ValueError):
            obj = pl.DataFrame(obj)
    return obj if obj.height else None


def _read_export(name: str, store_fn: str) -> pl.DataFrame | None:
    s = _store()
    if s is not None and hasattr(s, store_fn):
        try:
            return _as_polars(getattr(s, store_fn)())
        except Exception:  # a half-written or foreign file must not take the page down
            log.exception("store.%s failed; reading %s directly", store_fn, name)
    path = exports_dir() / name
    if not path.exists():
        return None
    return _as_polars(pl.read_parquet(path))


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=16)
def _cached_export(name: str, store_fn: str, path: str, version: str | None) -> pl.DataFrame | None:
    del path, version  # cache keys only
    return _read_export(name, store_fn)


def _export(name: str, store_fn: str) -> pl.DataFrame | None:
    path = exports_dir() / name
    version = file_version(path)
    if version is None:
        return None
    return _cached_export(name, store_fn, str(path), version)


FORECAST_CORE = [
    "id",
    "item_id",
    "store_id",
    "date",
    "predicted_sales",
    "lower",
    "upper",
    "model_version",
]


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=4)
def _forecasts(path: str, version: str) -> pl.DataFrame | None:
    del version
    try:
        names = pl.scan_parquet(path).collect_schema().names()
        return _as_polars(pl.read_parquet(path, columns=[c for c in FORECAST_CORE if c in names]))
    except FileNotFoundError:  # replaced between the version check and the read
        return None


def forecasts() -> pl.DataFrame | None:
    """Series forecasts (forecasts.parquet) without the quantile columns, or None.

    Read directly (only the columns the pages use: 8 of 21) rather than through
    ``store.load_forecasts()``, which loads every quantile: half the time at M5 scale.
    """
    path = exports_dir() / "forecasts.parquet"
    version = file_version(path)
    return None if version is None else _forecasts(str(path), version)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _series_forecast(path: str, version: str, series_id: str) -> pl.DataFrame:
    del version
    return pl.scan_parquet(path).filter(pl.col("id") == series_id).sort("date").collect()


def series_forecast(series_id: str) -> pl.DataFrame | None:
    """Every column (incl. quantiles) of one series' forecast."""
    path = exports_dir() / "forecasts.parquet"
    version = file_version(path)
    return None if version is None else _series_forecast(str(path), version, series_id)


def forecasts_aggregated() -> pl.DataFrame | None:
    return _export("forecasts_aggregated.parquet", "load_forecasts_aggregated")


def inventory_plan() -> pl.DataFrame | None:
    return _export("inventory_plan.parquet", "load_inventory_plan")


def backtest_metrics() -> pl.DataFrame | None:
    return _export("backtest_metrics.parquet", "load_backtest_metrics")


def interval_coverage() -> pl.DataFrame | None:
    return _export("interval_coverage.parquet", "load_interval_coverage")


def feature_importance() -> pl.DataFrame | None:
    return _export("feature_importance.parquet", "load_feature_importance")


def _read_json(name: str, store_fn: str) -> Any | None:
    s = _store()
    if s is not None and hasattr(s, store_fn):
        try:
            return getattr(s, store_fn)()
        except Exception:
            log.exception("store.%s failed; reading %s directly", store_fn, name)
    path = exports_dir() / name
    if not path.exists():
        return None
    try:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        log.warning("could not parse %s", path)
        return None


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=16)
def _cached_json(name: str, store_fn: str, path: str, version: str | None) -> Any | None:
    del path, version
    return _read_json(name, store_fn)


def _json(name: str, store_fn: str) -> Any | None:
    path = exports_dir() / name
    version = file_version(path)
    if version is None:
        return None
    return _cached_json(name, store_fn, str(path), version)


def drift_report() -> dict[str, Any] | None:
    out = _json("drift_report.json", "load_drift_report")
    return out if isinstance(out, dict) and out else None


def validation_report() -> dict[str, Any] | None:
    out = _json("validation_report.json", "load_validation_report")
    return out if isinstance(out, dict) and out else None


def inventory_validation() -> dict[str, Any] | None:
    """exports/inventory_validation.json: simulated vs target service levels of the policy."""
    out = _json("inventory_validation.json", "load_inventory_validation")
    return out if isinstance(out, dict) and out else None


def alerts() -> list[dict[str, Any]]:
    out = _json("alerts.jsonl", "load_alerts")
    if isinstance(out, pl.DataFrame):
        out = out.to_dicts()
    elif out is not None and not isinstance(out, list):
        out = _as_polars(out)
        out = [] if out is None else out.to_dicts()
    return list(out or [])


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _feature_catalog(key: tuple[str | None, ...]) -> Any | None:
    del key
    s = _store()
    if s is not None and hasattr(s, "load_feature_catalog"):
        try:
            return s.load_feature_catalog()
        except Exception:
            log.exception("store.load_feature_catalog failed")
    for path in (
        exports_dir() / "feature_catalog.json",
        home_dir() / "assets" / "feature_catalog.json",
    ):
        if path.exists():
            try:
                return json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                return None
    return None


def feature_catalog() -> dict[str, Any] | None:
    """The feature catalog (exports/ or assets/feature_catalog.json) or None."""
    paths = (exports_dir() / "feature_catalog.json", home_dir() / "assets" / "feature_catalog.json")
    key = tuple(str(p) + ":" + (file_version(p) or "") for p in paths)
    if all(file_version(p) is None for p in paths):
        return None
    out = _feature_catalog(key)
    if isinstance(out, list):
        return {"features": out}
    return out if isinstance(out, dict) else None


# ----------------------------------------------------------------------------- drift report
def drift_features(report: dict[str, Any]) -> pl.DataFrame | None:
    """PSI per feature from a drift report, tolerant of a list of records or a {feature: psi} map."""
    for key in ("features", "feature_drift", "psi", "feature_psi", "columns"):
        val = report.get(key)
        if isinstance(val, list) and val and isinstance(val[0], dict):
            df = pl.DataFrame(val, infer_schema_length=None)
            name = next((c for c in ("feature", "name", "column") if c in df.columns), None)
            if name and "psi" in df.columns:
                return df.rename({name: "feature"}).with_columns(pl.col("psi").cast(pl.Float64))
        if isinstance(val, dict) and val:
            rows = []
            for feat, v in val.items():
                psi = v.get("psi") if isinstance(v, dict) else v
                if isinstance(psi, int | float):
                    rows.append({"feature": feat, "psi": float(psi)})
            if rows:
                return pl.DataFrame(rows)
    return None


def drift_status(report: dict[str, Any] | None) -> str:
    """'ok', 'warn', 'drift' (alert) or 'unknown' from the report's overall status."""
    if not report:
        return "unknown"
    raw = report.get("status", report.get("drift_status"))
    if isinstance(raw, dict):
        raw = raw.get("status", raw.get("level"))
    text = str(raw or "").lower()
    if text == "warn" or "warn" in text or "watch" in text:
        return "warn"
    if any(w in text for w in ("drift", "alert", "degrad", "fail", "retrain", "critical")):
        return "drift"
    if any(w in text for w in ("ok", "pass", "stable", "healthy", "none")):
        return "ok"
    if report.get("drift_detected") is True or report.get("retrain") is True:
        return "drift"
    if report.get("drift_detected") is False:
        return "ok"
    return "unknown"


def drift_thresholds(report: dict[str, Any]) -> tuple[float, float]:
    """(warn, alert) PSI thresholds of the feature drift (defaults 0.1 / 0.25)."""
    th = (report.get("feature_drift") or {}).get("thresholds") or report.get("thresholds") or {}
    warn = th.get("warn", th.get("psi_warn", 0.1)) if isinstance(th, dict) else 0.1
    alert = (
        th.get("alert", th.get("psi_alert", th.get("psi", 0.25))) if isinstance(th, dict) else 0.25
    )
    return float(warn), float(alert)


# ----------------------------------------------------------------------------- forecast helpers
def _with_hierarchy(df: pl.DataFrame) -> pl.DataFrame:
    """Add dept/cat/state columns derived from M5 ids (ITEM = CAT_DEPTNO_NNN, store = ST_N)."""
    item = pl.col("item_id").cast(pl.String)
    store = pl.col("store_id").cast(pl.String)
    dept = item.str.replace(r"_[^_]+$", "")
    cols = []
    if "dept_id" not in df.columns:
        cols.append(dept.alias("dept_id"))
    if "cat_id" not in df.columns:
        cols.append(dept.str.replace(r"_[^_]+$", "").alias("cat_id"))
    if "state_id" not in df.columns:
        cols.append(store.str.replace(r"_[^_]+$", "").alias("state_id"))
    return df.with_columns(cols) if cols else df


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=4)
def _series_index(path: str, version: str) -> pl.DataFrame:
    del path, version
    fc = forecasts()
    assert fc is not None
    first = fc.filter(pl.col("date") == pl.col("date").min())  # one row per series
    idx = first.select("id", "item_id", "store_id").unique(maintain_order=True)
    return _with_hierarchy(idx).with_columns(pl.all().cast(pl.String)).sort("store_id", "item_id")


def series_index() -> pl.DataFrame | None:
    """One row per forecast series with its hierarchy (id, item, dept, cat, store, state)."""
    path = exports_dir() / "forecasts.parquet"
    version = file_version(path)
    if version is None or forecasts() is None:
        return None
    return _series_index(str(path), version)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _horizon(path: str, version: str) -> tuple[dt.date, dt.date] | None:
    del version
    row = (
        pl.scan_parquet(path)
        .select(pl.col("date").min(), pl.col("date").max().alias("x"))
        .collect()
    )
    first, last = row.row(0)
    return None if first is None else (first, last)


def horizon() -> tuple[dt.date, dt.date] | None:
    """First and last forecast day (reads only the date column)."""
    path = exports_dir() / "forecasts.parquet"
    version = file_version(path)
    return None if version is None else _horizon(str(path), version)


def level_forecast(level: str, level_id: str | None) -> pl.DataFrame | None:
    """date, predicted_sales, lower, upper for one aggregate (or, for 'Item × store', one id)."""
    if level == "Item × store":
        fc = forecasts()
        if fc is None:
            return None
        return (
            fc.filter(pl.col("id") == level_id)
            .select("date", "predicted_sales", "lower", "upper")
            .sort("date")
        )
    col, agg_name = LEVELS[level]
    agg = forecasts_aggregated()
    if agg is not None:
        out = agg.filter(pl.col("level") == agg_name)
        if col is not None:
            out = out.filter(pl.col("level_id").cast(pl.String) == level_id)
        if out.height:
            return out.select("date", "predicted_sales", "lower", "upper").sort("date")
    return _aggregate_forecast(level, level_id)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _aggregate_forecast_cached(
    level: str, level_id: str | None, version: str
) -> pl.DataFrame | None:
    del version
    fc = forecasts()
    idx = series_index()
    if fc is None or idx is None:
        return None
    col, _ = LEVELS[level]
    ids = idx if col is None else idx.filter(pl.col(col) == level_id)
    sub = fc.filter(pl.col("id").is_in(ids["id"].implode()))
    # Point forecasts add up; summing per-series quantiles gives a conservative (wide) band.
    return sub.group_by("date").agg(pl.col("predicted_sales", "lower", "upper").sum()).sort("date")


def _aggregate_forecast(level: str, level_id: str | None) -> pl.DataFrame | None:
    version = file_version(exports_dir() / "forecasts.parquet") or ""
    return _aggregate_forecast_cached(level, level_id, version)


# ----------------------------------------------------------------------------- history (sales_long)
# sales_long stores ``id`` and ``item_id`` as Enums: decoding them is the costly part of a read
# (``id``: seconds over the whole file; ``item_id``: ~0.1 s per million rows), and polars prunes no
# row group on an Enum predicate. So the dashboard never reads ``id``; aggregates come from the
# small Enums (store/dept), and reads of one store, series or item go only through the row groups
# whose footer statistics (min/max of store_id and item_id) can hold it: at M5 scale a store is 49
# contiguous row groups of 488 (one polars slice), a series 1-2, an item ~2 in every store.
KEYS = ("store_id", "item_id")


def _sl() -> tuple[str, str] | None:
    """(path or glob, version) of sales_long: one file, or a folder of partitions (by store)."""
    path = sales_long_path()
    version = file_version(path)
    if version is not None:
        return str(path), version
    parts = sorted(path.with_suffix("").glob("*.parquet"))
    if not parts:
        return None
    return str(path.with_suffix("") / "*.parquet"), "|".join(file_version(p) or "" for p in parts)


def _stat(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=2)
def _row_groups(path: str, version: str) -> pl.DataFrame:
    """Per row group of sales_long: file, index, first row, rows, footer min/max of each of KEYS.

    min/max are null when the footer has no usable statistics (the group is then always read);
    Parquet orders string statistics lexicographically, not in the Enum's order.
    """
    del version
    import pyarrow.parquet as pq

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
def _schema(path: str, version: str) -> pl.Schema:
    del version
    return pl.scan_parquet(path).collect_schema()


def _categories(path: str, version: str, column: str) -> list[str] | None:
    """Values of an Enum column of sales_long (from the schema), None if it is no Enum."""
    dtype = _schema(path, version).get(column)
    return dtype.categories.to_list() if isinstance(dtype, pl.Enum) else None


def _groups(path: str, version: str, **keys: str) -> pl.DataFrame:
    """The row groups of sales_long whose statistics can hold rows with these ``keys`` values
    (none if a value is not in the column's Enum)."""
    groups = _row_groups(path, version)
    for key, value in keys.items():
        cats = _categories(path, version, key)
        if cats is not None and value not in cats:
            return groups.clear()
        lo, hi = pl.col(f"{key}_min"), pl.col(f"{key}_max")
        groups = groups.filter(lo.is_null() | ((lo <= value) & (hi >= value)))
    return groups


def _scan(path: str, version: str, **keys: str) -> pl.LazyFrame:
    """sales_long rows with ``store_id``/``item_id`` equal to ``keys``: polars slices of the row
    groups that can hold them (adjacent groups make one slice; each slice re-reads the footer)."""
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


def _read_scattered(path: str, version: str, columns: list[str], **keys: str) -> pl.DataFrame:
    """``columns`` of the rows matching ``keys``, for row groups scattered over the file (an item:
    ~2 per store). pyarrow reads them all with one footer parse per file, where a polars slice per
    group would re-read the footer each time (~3x slower at M5 scale)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    groups = _groups(path, version, **keys)
    tables = []
    for file, idx in groups.group_by("file", maintain_order=True).agg("group").iter_rows():
        table = pq.ParquetFile(file).read_row_groups(
            idx, columns=list(dict.fromkeys([*keys, *columns]))
        )
        mask = functools.reduce(pc.and_, [pc.equal(table[k], v) for k, v in keys.items()])
        tables.append(table.filter(mask).select(columns))
    if not tables:
        schema = _schema(path, version)
        return pl.DataFrame(schema={c: schema[c] for c in columns})
    return pl.from_arrow(pa.concat_tables(tables))  # type: ignore[return-value]


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _last_sales_day(path: str, version: str) -> dt.date | None:
    del version
    lf = pl.scan_parquet(path).filter(pl.col("sales").is_not_null())
    return lf.select(pl.col("date").max()).collect().item()


def last_sales_day() -> dt.date | None:
    """Last day with actual sales: the day before the forecast horizon (or from sales_long)."""
    hz = horizon()
    if hz is not None:
        return hz[0] - dt.timedelta(days=1)
    sl = _sl()
    return None if sl is None else _last_sales_day(*sl)


def _window_start() -> dt.date | None:
    last = last_sales_day()
    return None if last is None else last - dt.timedelta(days=WINDOW_DAYS - 1)


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=2)
def _cube(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    cube = (
        pl.scan_parquet(path)
        .filter(pl.col("date") >= start, pl.col("sales").is_not_null())
        .group_by("store_id", "dept_id", "date")
        .agg(
            pl.col("sales").sum().alias("sales"),
            (pl.col("sales") * pl.col("sell_price")).sum().alias("dollars"),
            pl.len().alias("series_days"),
            (pl.col("sales") == 0).sum().alias("zero_days"),
            pl.col("sell_price").is_null().sum().alias("price_missing"),
        )
        .collect()
    )
    # state and category follow from the M5 ids (CA_1 -> CA, FOODS_3 -> FOODS): not read from disk
    return cube.with_columns(pl.col("store_id", "dept_id").cast(pl.String)).with_columns(
        pl.col("store_id").str.replace(r"_[^_]+$", "").alias("state_id"),
        pl.col("dept_id").str.replace(r"_[^_]+$", "").alias("cat_id"),
    )


def history_cube() -> pl.DataFrame | None:
    """Daily units and dollars by store × department over the last WINDOW_DAYS history days."""
    sl, start = _sl(), _window_start()
    if sl is None or start is None:
        return None
    return _cube(*sl, start)


def _store_rows(path: str, version: str, start: dt.date, store_id: str) -> pl.DataFrame:
    return (
        _scan(path, version, store_id=store_id)
        .filter(pl.col("date") >= start)
        .select("item_id", "date", "sales", "sell_price", "is_launched")
        .collect()
    )


def store_window(store_id: str) -> pl.DataFrame | None:
    """item_id (Enum), date, sales (null on horizon days), sell_price, is_launched of one store
    over the window (not cached: ~20 MB a store; callers cache what they derive from it)."""
    sl, start = _sl(), _window_start()
    return None if sl is None or start is None else _store_rows(*sl, start, store_id)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _series_history(
    path: str, version: str, start: dt.date, store_id: str, item_id: str
) -> pl.DataFrame:
    return (
        _scan(path, version, store_id=store_id, item_id=item_id)
        .filter(pl.col("date") >= start)
        .select("date", "sales")
        .sort("date")
        .collect()
    )


def level_history(
    level: str,
    level_id: str | None,
    days: int,
    store_id: str | None = None,
    item_id: str | None = None,
) -> pl.DataFrame | None:
    """date, sales for the last ``days`` history days of one aggregate or (level 'Item × store')
    of the series ``item_id`` in ``store_id``."""
    last, start, sl = last_sales_day(), _window_start(), _sl()
    if last is None or start is None or sl is None:
        return None
    first = last - dt.timedelta(days=days - 1)
    if level == "Item × store":
        hist = _series_history(*sl, start, store_id or "", item_id or "")
        return hist.filter(pl.col("date").is_between(first, last))
    cube = history_cube()
    if cube is None:
        return None
    col, _ = LEVELS[level]
    if col is not None:
        cube = cube.filter(pl.col(col) == level_id)
    return (
        cube.filter(pl.col("date") >= first)
        .group_by("date")
        .agg(pl.col("sales").sum())
        .sort("date")
    )


def calendar_marks(first: dt.date, last: dt.date, state: str | None) -> pl.DataFrame:
    """date, event (name or null), snap (0/1 for ``state``) between two dates."""
    cal_path = calendar_path()
    cal_version = file_version(cal_path)
    cal = _calendar(str(cal_path), cal_version) if cal_version else _calendar_from_sales()
    if cal is None:
        return pl.DataFrame(schema={"date": pl.Date, "event": pl.String, "snap": pl.Int8})
    cal = cal.filter(pl.col("date").is_between(first, last))
    snap_col = f"snap_{state}" if state else None
    snap = pl.col(snap_col) if snap_col and snap_col in cal.columns else pl.lit(0, pl.Int8)
    event = pl.concat_str(
        [pl.col("event_name_1"), pl.col("event_name_2")], separator=" / ", ignore_nulls=True
    )
    return cal.select(
        "date", pl.when(event != "").then(event).alias("event"), snap.cast(pl.Int8).alias("snap")
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _calendar(path: str, version: str) -> pl.DataFrame:
    del version
    return pl.read_parquet(path)


def _calendar_from_sales() -> pl.DataFrame | None:
    """Events and per-state SNAP flags from sales_long when raw_calendar is not materialized."""
    sl, start = _sl(), _window_start()
    if sl is None or start is None:
        return None
    return _calendar_from_sales_cached(*sl, start)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=2)
def _calendar_from_sales_cached(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    lf = pl.scan_parquet(path).filter(pl.col("date") >= start)
    per_state = (
        lf.group_by("date", pl.col("state_id").cast(pl.String))
        .agg(pl.col("snap").max(), pl.col("event_name_1", "event_name_2").drop_nulls().first())
        .collect()
    )
    events = per_state.group_by("date").agg(pl.col("event_name_1", "event_name_2").first())
    snap = per_state.pivot("state_id", index="date", values="snap")
    snap = snap.rename({c: f"snap_{c}" for c in snap.columns if c != "date"})
    return events.join(snap, on="date", how="left")


# ----------------------------------------------------------------------------- KPIs
HOME_DAYS = 90


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _daily_totals(path: str, version: str, start: dt.date) -> pl.DataFrame:
    del version
    return (
        pl.scan_parquet(path)
        .filter(pl.col("date") >= start, pl.col("sales").is_not_null())
        .group_by("date")
        .agg(
            pl.col("sales").sum().alias("sales"),
            (pl.col("sales") * pl.col("sell_price")).sum().alias("dollars"),
        )
        .sort("date")
        .collect()
    )


def daily_totals() -> pl.DataFrame | None:
    """date, sales, dollars summed over all series for the last HOME_DAYS days (no Enum column
    is read, so this is several times cheaper than the store × department cube)."""
    sl, last = _sl(), last_sales_day()
    if sl is None or last is None:
        return None
    return _daily_totals(*sl, last - dt.timedelta(days=HOME_DAYS - 1))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _totals(fc_version: str, sl_version: str | None) -> dict[str, float | None]:
    del fc_version, sl_version
    fc = forecasts()
    assert fc is not None
    out: dict[str, float | None] = {
        "units_next": float(fc["predicted_sales"].sum()),
        "dollars_next": None,
        "units_last": None,
        "dollars_last": None,
    }
    daily, last = daily_totals(), last_sales_day()
    if daily is None or last is None:
        return out
    last28 = daily.filter(pl.col("date") > last - dt.timedelta(days=28))
    out["units_last"] = float(last28["sales"].sum())
    out["dollars_last"] = float(last28["dollars"].sum())
    # Forecast dollars: units valued at the average realized price per unit of the last 28 days.
    if out["units_last"]:
        out["dollars_next"] = out["units_next"] * out["dollars_last"] / out["units_last"]
    return out


def forecast_totals() -> dict[str, float | None] | None:
    """Units/dollars forecast for the horizon and actual units/dollars of the 28 days before it."""
    fc_version = file_version(exports_dir() / "forecasts.parquet")
    if fc_version is None or forecasts() is None:
        return None
    sl = _sl()
    return _totals(fc_version, sl[1] if sl else None)


def demand_cutoffs() -> tuple[float, float]:
    """The Syntetos–Boylan (ADI, CV²) cut-offs of ``forecasting_assets.inventory.demand``."""
    from forecasting_assets.inventory.demand import ADI_CUTOFF, CV2_CUTOFF

    return ADI_CUTOFF, CV2_CUTOFF


STATS_SCHEMA = {
    "item_id": pl.String,
    "days": pl.Int64,
    "units": pl.Float64,
    "zero_share": pl.Float64,
    "adi": pl.Float64,
    "cv2": pl.Float64,
    "demand_class": pl.String,
}


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=10)
def _series_stats(path: str, version: str, start: dt.date, store_id: str) -> pl.DataFrame:
    from forecasting_assets.inventory.demand import classify_demand, demand_statistics

    win = _store_rows(path, version, start, store_id)
    obs = win.filter(pl.col("sales").is_not_null(), pl.col("is_launched").fill_null(True))
    if not obs.height:
        return pl.DataFrame(schema=STATS_SCHEMA)
    # A (items, days) array with NaN where a day is no demand observation (before launch), indexed
    # by the item's Enum code: no string is built for the ~1M rows of a store.
    item = obs["item_id"]
    if not isinstance(item.dtype, pl.Enum):
        item = item.cast(pl.String).cast(pl.Enum(item.cast(pl.String).unique().sort()))
    names = item.dtype.categories  # type: ignore[attr-defined]
    code = item.to_physical().to_numpy().astype(np.int64)
    day = (obs["date"] - start).dt.total_days().to_numpy()
    hist = np.full((len(names), int(day.max()) + 1), np.nan)
    hist[code, day] = obs["sales"].to_numpy()
    present = np.flatnonzero(np.bincount(code, minlength=len(names)))
    stats = demand_statistics(hist[present])
    return pl.DataFrame(
        {
            "item_id": names.gather(present),
            "days": stats["n_days"],
            "units": stats["mean_daily_demand"] * stats["n_days"],
            "zero_share": 1 - stats["n_nonzero"] / stats["n_days"],
            "adi": stats["adi"],
            "cv2": stats["cv2"],
            "demand_class": classify_demand(stats["adi"], stats["cv2"]).astype(str),
        },
        schema=STATS_SCHEMA,
    )


def series_stats(store_id: str) -> pl.DataFrame | None:
    """Per item of a store, over the window from launch: zero share, ADI, CV², demand class
    (``forecasting_assets.inventory.demand``: the classes of the inventory plan)."""
    sl, start = _sl(), _window_start()
    if sl is None or start is None:
        return None
    return _series_stats(*sl, start, store_id)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=4)
def _data_summary(path: str, version: str) -> dict[str, Any]:
    schema = _schema(path, version)
    levels = {
        c: len(cats) if (cats := _categories(path, version, c)) is not None else None
        for c in ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
        if c in schema
    }
    rows = int(_row_groups(path, version)["rows"].sum())  # from the Parquet footers
    first = pl.scan_parquet(path).select("date").head(1).collect().item()  # series start on day 1
    return {"rows": rows, "first": first, "columns": len(schema), "levels": levels}


def data_summary() -> dict[str, Any] | None:
    """Rows, first/last day and hierarchy sizes of sales_long (metadata and one row: no scan)."""
    sl = _sl()
    if sl is None:
        return None
    return {**_data_summary(*sl), "last": last_sales_day()}


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=32)
def _price_history(path: str, version: str, item_id: str) -> pl.DataFrame:
    rows = _read_scattered(
        path, version, ["store_id", "wm_yr_wk", "date", "sell_price"], item_id=item_id
    )
    return (
        rows.lazy()
        .group_by(pl.col("store_id").cast(pl.String), "wm_yr_wk")
        .agg(pl.col("date").min().alias("week_start"), pl.col("sell_price").drop_nulls().first())
        .drop_nulls("sell_price")
        .select("week_start", "store_id", "sell_price")
        .sort("store_id", "week_start")
        .collect()
    )


def price_history(item_id: str) -> pl.DataFrame | None:
    """Weekly sell price of one item in every store (only the row groups that can hold the item)."""
    sl = _sl()
    return None if sl is None else _price_history(*sl, item_id)


def enum_values(column: str) -> list[str]:
    """Values of an Enum column of sales_long from its schema (no scan); [] if unavailable."""
    sl = _sl()
    cats = None if sl is None else _categories(*sl, column)
    return sorted(cats) if cats else []


# ----------------------------------------------------------------------------- MLflow
def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_absolute():
        path = (
            Path("/" + uri.removeprefix("sqlite:///"))
            if uri.startswith("sqlite:////")
            else path.resolve()
        )
    return path


def _query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def _ms(ts: Any) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(int(ts) / 1000, tz=dt.UTC)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=8)
def _mlflow_sqlite(db: str, version: str) -> dict[str, Any]:
    del version
    path = Path(db)
    try:
        runs = _query(
            path,
            """SELECT r.run_uuid AS run_id, r.name AS run_name, r.status, r.start_time, r.end_time
               FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
               WHERE e.name = ? AND r.lifecycle_stage = 'active'
               ORDER BY r.start_time DESC LIMIT 500""",
            (EXPERIMENT,),
        )
        metrics = _query(
            path,
            """SELECT m.run_uuid AS run_id, m.key, m.value FROM latest_metrics m
               JOIN runs r ON r.run_uuid = m.run_uuid
               JOIN experiments e ON e.experiment_id = r.experiment_id WHERE e.name = ?""",
            (EXPERIMENT,),
        )
        versions = _query(
            path,
            """SELECT version, creation_time, run_id, status, current_stage FROM model_versions
               WHERE name = ? ORDER BY version DESC""",
            (MODEL_NAME,),
        )
        aliases = _query(
            path,
            "SELECT alias, version FROM registered_model_aliases WHERE name = ?",
            (MODEL_NAME,),
        )
    except sqlite3.Error as exc:
        log.warning("MLflow store %s not readable: %s", db, exc)
        return {"runs": [], "versions": [], "champion": None}
    by_run: dict[str, dict[str, float]] = {}
    for m in metrics:
        by_run.setdefault(m["run_id"], {})[m["key"]] = m["value"]
    alias_of: dict[int, list[str]] = {}
    for a in aliases:
        alias_of.setdefault(int(a["version"]), []).append(a["alias"])
    version_of_run = {v["run_id"]: int(v["version"]) for v in versions}
    for r in runs:
        r["start_time"] = _ms(r["start_time"])
        r["end_time"] = _ms(r["end_time"])
        r["metrics"] = by_run.get(r["run_id"], {})
        r["model_version"] = version_of_run.get(r["run_id"])
    for v in versions:
        v["version"] = int(v["version"])
        v["creation_time"] = _ms(v["creation_time"])
        v["aliases"] = alias_of.get(v["version"], [])
        v["metrics"] = by_run.get(v["run_id"], {})
    champ = next((v for v in versions if "champion" in v["aliases"]), None)
    return {"runs": runs, "versions": versions, "champion": champ}


def _mlflow_via_store() -> dict[str, Any]:
    s = _store()
    out: dict[str, Any] = {"runs": [], "versions": [], "champion": None}
    if s is None:
        return out
    try:
        info = s.champion_info() if hasattr(s, "champion_info") else None
        if info:
            info = dict(info)
            created = info.get("registered_at")
            out["champion"] = {
                "version": int(info["version"]),
                "creation_time": dt.datetime.fromisoformat(created) if created else None,
                "run_id": info.get("run_id"),
                "metrics": info.get("metrics", {}),
                "aliases": ["champion"],
            }
        runs = s.list_training_runs() if hasattr(s, "list_training_runs") else None
        df = _as_polars(runs)
        for row in [] if df is None else df.to_dicts():
            row["metrics"] = {
                k.removeprefix("metrics."): v for k, v in row.items() if k.startswith("metrics.")
            }
            row["model_version"] = None
            out["runs"].append(row)
    except Exception:
        log.exception("reading MLflow through the store failed")
    return out


def mlflow_info() -> dict[str, Any]:
    """{'runs': [...], 'versions': [...], 'champion': {...} | None} from the tracking store."""
    uri = tracking_uri()
    db = _sqlite_path(uri)
    if db is not None:
        version = file_version(db)
        if version is None:
            return {"runs": [], "versions": [], "champion": None}
        return _mlflow_sqlite(str(db), version)
    return _cached_store_mlflow(uri)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=2)
def _cached_store_mlflow(uri: str) -> dict[str, Any]:
    del uri
    return _mlflow_via_store()


# ----------------------------------------------------------------------------- inventory what-if
DIST_COLS = [
    "id",
    "item_id",
    "store_id",
    "dept_id",
    "demand_class",
    "mean_daily_demand",
    "dispersion",
    "unit_price",
]


def demand_distribution(store_id: str, dept_id: str | None) -> pl.DataFrame | None:
    """Per-series protection-period demand distribution for one store (and department).

    Taken from the inventory plan (``mean_daily_demand``, ``dispersion``, ``unit_price``) when it
    has them; otherwise from the forecasts: mean of the daily forecast, and dispersion
    (variance / mean) from the 80 % interval width, priced with the last sell prices.
    """
    return _demand_distribution(store_id, dept_id, _plan_version())


@st.cache_resource(ttl=TTL, show_spinner=False, max_entries=32)
def _demand_distribution(store_id: str, dept_id: str | None, version: str) -> pl.DataFrame | None:
    del version
    plan = inventory_plan()
    if plan is not None and {"mean_daily_demand", "dispersion", "unit_price"} <= set(plan.columns):
        if "dept_id" not in plan.columns and "item_id" in plan.columns:
            plan = _with_hierarchy(plan)
        sub = plan.filter(pl.col("store_id") == store_id)
        if dept_id:
            sub = sub.filter(pl.col("dept_id") == dept_id)
        return sub.select([c for c in DIST_COLS if c in sub.columns])
    fc, idx = forecasts(), series_index()
    if fc is None or idx is None:
        return None
    ids = idx.filter(pl.col("store_id") == store_id)
    if dept_id:
        ids = ids.filter(pl.col("dept_id") == dept_id)
    sub = fc.filter(pl.col("id").is_in(ids["id"].implode()))
    dist = sub.group_by("id").agg(
        pl.col("predicted_sales").mean().alias("mean_daily_demand"),
        ((pl.col("upper") - pl.col("lower")) / 2.5631).pow(2).mean().alias("_var"),
    )
    dist = dist.with_columns(
        (pl.col("_var") / pl.col("mean_daily_demand").clip(1e-9)).clip(1.0).alias("dispersion")
    ).drop("_var")
    win = store_window(store_id)
    if win is not None:
        price = (
            win.filter(pl.col("sell_price").is_not_null())
            .group_by("item_id")
            .agg(pl.col("sell_price").last().cast(pl.Float64).alias("unit_price"))
            .with_columns(pl.col("item_id").cast(pl.String))
        )
        dist = dist.join(ids.select("id", "item_id"), on="id").join(price, on="item_id", how="left")
        dist = dist.drop("item_id")
    if "unit_price" not in dist.columns:
        dist = dist.with_columns(unit_price=pl.lit(None, pl.Float64))
    med = dist["unit_price"].median()
    dist = dist.with_columns(pl.col("unit_price").fill_null(med if med is not None else 1.0))
    return ids.select("id", "item_id", "store_id", "dept_id").join(dist, on="id")


CURVE_LEVELS = (0.80, 0.85, 0.90, 0.95, 0.975, 0.99, 0.995)


def _plan_version() -> str:
    return ":".join(
        file_version(p) or ""
        for p in (exports_dir() / "inventory_plan.parquet", exports_dir() / "forecasts.parquet")
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=128)
def _whatif_plan(
    store_id: str, dept_id: str | None, service_level: float, lead_time: int, version: str
) -> pl.DataFrame | None:
    del version
    dist = demand_distribution(store_id, dept_id)
    if dist is None or not dist.height:
        return None
    plan_inventory, _ = inventory_functions()
    return plan_inventory(dist, service_level=service_level, lead_time_days=lead_time)


def whatif_plan(
    store_id: str, dept_id: str | None, service_level: float, lead_time: int
) -> pl.DataFrame | None:
    """plan_inventory for one store (and department) at a what-if service level and lead time."""
    return _whatif_plan(store_id, dept_id, round(service_level, 4), int(lead_time), _plan_version())


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def _cost_curve(
    store_id: str, dept_id: str | None, lead_time: int, levels: tuple[float, ...], version: str
) -> pl.DataFrame | None:
    del version
    dist = demand_distribution(store_id, dept_id)
    if dist is None or not dist.height:
        return None
    _, curve = inventory_functions()
    return curve(dist, service_levels=levels, lead_time_days=lead_time)


def cost_curve(
    store_id: str, dept_id: str | None, lead_time: int, extra_level: float | None = None
) -> pl.DataFrame | None:
    """cost_vs_service_curve over CURVE_LEVELS plus ``extra_level`` for one selection.

    The extra level is computed (and cached) apart, so moving the service-level slider adds one
    level instead of recomputing the curve.
    """
    version = _plan_version()
    curve = _cost_curve(store_id, dept_id, int(lead_time), CURVE_LEVELS, version)
    extra = None if extra_level is None else round(extra_level, 4)
    if curve is None or extra is None or extra in CURVE_LEVELS:
        return curve
    point = _cost_curve(store_id, dept_id, int(lead_time), (extra,), version)
    return curve if point is None else pl.concat([curve, point]).sort("service_level")


def inventory_functions() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """helper I's pure ``plan_inventory`` and ``cost_vs_service_curve``."""
    from forecasting_assets.inventory import cost_vs_service_curve, plan_inventory

    return plan_inventory, cost_vs_service_curve
