"""What the API serves: immutable snapshots of forecasts, features and the champion model.

A :class:`Snapshot` bundles a :class:`ForecastIndex` (the forecasts export indexed for O(1)
lookups), a :class:`FeatureSource` (lazy access to the features table for dates outside the
forecasts) and a :class:`ModelBundle` (the champion pyfunc and its registry facts). Nothing
in a snapshot is mutated after construction; :class:`ServiceState` swaps the whole snapshot
with one reference assignment when a new forecasts file, features file or champion appears,
so a request always sees one consistent version.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import polars as pl

from forecasting_assets import store
from forecasting_assets.modeling.recent import CONTEXT_DAYS, RECENT_COLUMNS, with_recent_features

logger = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
INTERVAL_LEVEL = 0.8
_SUFFIXES = ("_evaluation", "_validation")
SMOKE_ROWS = 8
MAX_INDEXED_SERIES = 256  # more series in one fallback: one scan is cheaper than slices
RESOLVE_CACHE_SIZE = 100_000  # id spellings remembered per snapshot (~330 B each, <= 32 MiB)


class LoadError(RuntimeError):
    """A materialized file or model could not be loaded (message is user-facing)."""


class PredictionError(Exception):
    """A request cannot be answered; carries the HTTP status and a clear message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _epoch_day(d: dt.date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def _utc_from_ns(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


def _file_mtime(path: Path) -> dt.datetime | None:
    try:
        return _utc_from_ns(path.stat().st_mtime_ns)
    except OSError:
        return None


# --------------------------------------------------------------------------- forecasts
@dataclass(frozen=True, eq=False)
class ForecastIndex:
    """The forecasts export in numpy arrays, indexed by series and day.

    Rows are sorted by (series, date). ``series_pos`` maps a series id to its position;
    the row of (series, day) is ``start[pos] + day - first_day[pos]`` when the series' days
    are contiguous (always for the pipeline's export), verified against ``day``; otherwise
    a binary search inside the series' slice. Both are O(1)/O(log 28).
    """

    version: str
    path: Path
    loaded_at: dt.datetime
    file_modified_at: dt.datetime | None
    series_pos: dict[str, int]
    series_item: tuple[str, ...]
    series_store: tuple[str, ...]
    start: np.ndarray
    count: np.ndarray
    first_day: np.ndarray
    day: np.ndarray
    pred: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    version_code: np.ndarray
    model_versions: tuple[str, ...]
    min_date: dt.date
    max_date: dt.date

    @property
    def n_rows(self) -> int:
        return len(self.day)

    @property
    def n_series(self) -> int:
        return len(self.series_pos)

    def row(self, pos: int, epoch_day: int) -> int | None:
        """Row of series ``pos`` on ``epoch_day`` or ``None``."""
        off = epoch_day - int(self.first_day[pos])
        n = int(self.count[pos])
        if off < 0:
            return None
        s = int(self.start[pos])
        if off < n and int(self.day[s + off]) == epoch_day:
            return s + off
        seg = self.day[s : s + n]
        k = int(np.searchsorted(seg, epoch_day))
        if k < n and int(seg[k]) == epoch_day:
            return s + k
        return None

    def rows(self, pos: np.ndarray, epoch_days: np.ndarray) -> np.ndarray:
        """Vectorized :meth:`row`: row index per (series pos, day), -1 where absent."""
        off = epoch_days - self.first_day[pos]
        cand = self.start[pos] + off
        ok = (off >= 0) & (off < self.count[pos])
        out = np.full(len(pos), -1, dtype=np.int64)
        good = ok.copy()
        good[ok] = self.day[cand[ok]] == epoch_days[ok]
        out[good] = cand[good]
        for i in np.flatnonzero(~good & (off >= 0)).tolist():  # gaps: slow path
            r = self.row(int(pos[i]), int(epoch_days[i]))
            out[i] = -1 if r is None else r
        return out

    @classmethod
    def from_frame(cls, df: pl.DataFrame, path: Path, version: str) -> ForecastIndex:
        """Build from a contract-shaped forecasts frame; :class:`LoadError` if malformed."""
        need = {"id", "item_id", "store_id", "date", "predicted_sales"}
        missing = sorted(need - set(df.columns))
        if missing:
            raise LoadError(f"{path.name}: missing columns {missing}")
        if df.height == 0:
            raise LoadError(f"{path.name}: no rows")
        pred = pl.col("predicted_sales").cast(pl.Float64)
        df = df.select(
            pl.col("id").cast(pl.String).str.replace(r"_(evaluation|validation)$", ""),
            pl.col("item_id").cast(pl.String),
            pl.col("store_id").cast(pl.String),
            pl.col("date").cast(pl.Date),
            pred.alias("pred"),
            (pl.col("lower").cast(pl.Float64) if "lower" in df.columns else pred).alias("lower"),
            (pl.col("upper").cast(pl.Float64) if "upper" in df.columns else pred).alias("upper"),
            (
                pl.col("model_version").cast(pl.String)
                if "model_version" in df.columns
                else pl.lit("unknown")
            ).alias("mv"),
        )
        if df.select(pl.any_horizontal(pl.col("id", "date").is_null().any())).item():
            raise LoadError(f"{path.name}: null id or date")
        df = (
            df.with_columns(
                pl.col("lower").fill_null(pl.col("pred")),
                pl.col("upper").fill_null(pl.col("pred")),
                pl.col("mv").fill_null("unknown"),
            )
            .unique(["id", "date"], keep="last", maintain_order=True)
            .sort("id", "date")
        )
        if df["pred"].is_null().any():
            raise LoadError(f"{path.name}: null predicted_sales")
        series = df.group_by("id", maintain_order=True).agg(
            pl.len().alias("n"),
            pl.col("item_id").first(),
            pl.col("store_id").first(),
            pl.col("date").first().alias("first"),
        )
        count = series["n"].to_numpy().astype(np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        model_versions = tuple(df["mv"].unique(maintain_order=True).to_list())
        codes = (
            df["mv"]
            .replace_strict(
                list(model_versions), list(range(len(model_versions))), return_dtype=pl.Int32
            )
            .to_numpy()
        )
        ids = series["id"].to_list()
        return cls(
            version=version,
            path=path,
            loaded_at=dt.datetime.now(dt.UTC),
            file_modified_at=_file_mtime(path),
            series_pos={s: k for k, s in enumerate(ids)},
            series_item=tuple(series["item_id"].to_list()),
            series_store=tuple(series["store_id"].to_list()),
            start=start,
            count=count,
            first_day=series["first"].cast(pl.Int32).to_numpy().astype(np.int64),
            day=df["date"].cast(pl.Int32).to_numpy().astype(np.int64),
            pred=np.clip(df["pred"].to_numpy(), 0.0, None),
            lower=df["lower"].to_numpy(),
            upper=df["upper"].to_numpy(),
            version_code=codes,
            model_versions=model_versions,
            min_date=df["date"].min(),  # type: ignore[arg-type]
            max_date=df["date"].max(),  # type: ignore[arg-type]
        )

    @classmethod
    def load(cls) -> ForecastIndex | None:
        """Load the current export; ``None`` if it is not materialized yet."""
        path = store.exports_dir() / store.FORECASTS_FILE
        version = store.file_version(path)
        if version is None:
            return None
        try:
            df = store.load_forecasts()
        except Exception as exc:  # corrupt / partial parquet
            raise LoadError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from exc
        if df is None:
            return None
        return cls.from_frame(df, path, version)


# --------------------------------------------------------------------------- features
@dataclass(frozen=True, eq=False)
class FeatureSource:
    """Lazy access to ``assets/features.parquet`` (never fully loaded into memory).

    ``runs`` maps a file id to its (first row, row count) when each series' rows are
    contiguous (the pipeline writes the table sorted by id, date): a fallback then reads
    only the row groups of the requested series instead of scanning the whole table.
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
            sid = _strip_suffix(row["id"])
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
        want = pl.DataFrame(
            {"id": [p[0] for p in pairs], "date": [p[1] for p in pairs]},
            schema={"id": pl.String, "date": pl.Date},
        ).unique()
        recent = [c for c in columns if c in RECENT_COLUMNS and c not in self.columns]
        cols = ["date", *[c for c in columns if c not in ("id", "date", *recent)]]
        if not recent:
            return want.join(self._read(want, cols), on=["id", "date"], how="inner")
        lo, hi = want["date"].min(), want["date"].max()
        span = pl.date_range(lo - dt.timedelta(days=CONTEXT_DAYS), hi, eager=True).alias("date")
        window = want.select(pl.col("id").unique()).join(span.to_frame(), how="cross")
        extra = [c for c in ("sales", "is_launched") if c not in cols]
        rows = with_recent_features(self._read(window, [*cols, *extra]), day="date")
        return want.join(rows.select("id", *cols, *recent), on=["id", "date"], how="inner")

    def _read(self, want: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        got = self._fetch_slices(want, cols)
        return self._fetch_scan(want, cols) if got is None else got

    def _fetch_slices(self, want: pl.DataFrame, cols: list[str]) -> pl.DataFrame | None:
        """Read only the row range of each requested series; ``None``: scan instead."""
        per_series = want.group_by("id").agg("date")
        if self.runs is None or per_series.height > MAX_INDEXED_SERIES:
            return None
        lf = pl.scan_parquet(self.path)
        parts = []
        for sid, dates in per_series.iter_rows():
            run = self.runs.get(sid)
            if run is not None:
                parts.append(
                    lf.slice(*run)
                    .filter(pl.col("date").is_in(dates))
                    .select(pl.col("id").cast(pl.String), *cols)
                    .filter(pl.col("id") == sid)
                )
        return pl.concat(pl.collect_all(parts)) if parts else None

    def _fetch_scan(self, want: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        return (
            pl.scan_parquet(self.path)
            .filter(pl.col("date").is_in(want["date"].unique().implode()))
            .with_columns(pl.col("id").cast(pl.String))
            .filter(pl.col("id").is_in(want["id"].unique().implode()))
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


# --------------------------------------------------------------------------- model
@dataclass(frozen=True, eq=False)
class ModelBundle:
    """The champion pyfunc model and what the registry says about it."""

    version: str
    info: dict[str, Any]
    model: Any
    feature_columns: tuple[str, ...]
    importance: dict[str, dict[str, float]] | None
    importance_source: str | None
    calibration: dict[str, Any] | None
    loaded_at: dt.datetime
    smoke_test: str

    @property
    def run_id(self) -> str | None:
        return self.info.get("run_id")

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Point forecasts (>= 0) for the feature rows in ``frame``."""
        x = model_input(frame, self.feature_columns)
        out = np.asarray(self.model.predict(x), dtype=np.float64).reshape(-1)
        if out.shape[0] != frame.height:
            raise PredictionError(503, "model returned a wrong number of predictions")
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def model_input(frame: pl.DataFrame, columns: Sequence[str]) -> Any:
    """The pandas frame the pyfunc expects: feature columns, categorical ids as strings."""
    return (
        frame.select(list(columns))
        .with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.String))
        .to_pandas()
    )


def interval_from_calibration(
    calibration: dict[str, Any] | None, point: np.ndarray, level: float = INTERVAL_LEVEL
) -> tuple[np.ndarray, np.ndarray] | None:
    """80 % interval from the model's conformal calibration (binned residual quantiles).

    ``calibration`` = {"quantiles": [...], "edges": [...], "residuals": [[...], ...]} as
    logged with the pipeline's model; ``None`` if absent or malformed.
    """
    if not calibration:
        return None
    try:
        qs = [float(q) for q in calibration["quantiles"]]
        lo_i = qs.index(min(qs, key=lambda q: abs(q - (1 - level) / 2)))
        hi_i = qs.index(min(qs, key=lambda q: abs(q - (1 + level) / 2)))
        edges = np.asarray(calibration["edges"], dtype=np.float64)
        res = np.asarray(calibration["residuals"], dtype=np.float64)
        bins = np.searchsorted(edges, point, side="right")
        lo = np.maximum(point + res[bins, lo_i], 0.0)
        hi = np.maximum(point + res[bins, hi_i], 0.0)
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return np.minimum(lo, point), np.maximum(hi, point)


def _calibration_of(model: Any) -> dict[str, Any] | None:
    try:
        cal = getattr(model.unwrap_python_model(), "calibration", None)
    except Exception:
        return None
    return cal if isinstance(cal, dict) else None


def _importance_from(
    info: dict[str, Any], model: Any
) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """MLflow run artifact ``feature_importance.json``, else the native LightGBM booster."""
    run_id = info.get("run_id")
    raw = store.load_run_json_artifact(run_id, "feature_importance.json") if run_id else None
    if isinstance(raw, dict) and raw:
        out: dict[str, dict[str, float]] = {}
        for feat, val in raw.items():
            if isinstance(val, dict):
                out[str(feat)] = {
                    "gain": float(val.get("gain", 0.0) or 0.0),
                    "split": float(val.get("split", 0.0) or 0.0),
                }
            elif isinstance(val, int | float):
                out[str(feat)] = {"gain": float(val), "split": 0.0}
        if out:
            return out, "mlflow_artifact"
    try:  # native LightGBM booster behind the pyfunc flavor
        booster = model.get_raw_model()
        names = booster.feature_name()
        gain = booster.feature_importance("gain")
        split = booster.feature_importance("split")
        imp = {
            n: {"gain": float(g), "split": float(s)}
            for n, g, s in zip(names, gain, split, strict=True)
        }
        return imp, "model"
    except Exception:
        return None, None


def load_model_bundle(features: FeatureSource | None) -> ModelBundle | None:
    """Load and smoke-test the champion; ``None`` if there is none, LoadError if broken."""
    try:
        loaded = store.load_champion()
    except Exception as exc:
        raise LoadError(
            f"champion model could not be loaded ({type(exc).__name__}: {exc})"
        ) from exc
    if loaded is None:
        return None
    info, model = loaded
    cols = store.champion_feature_columns(info, model)
    if not cols:
        raise LoadError(
            f"champion v{info['version']}: no feature_columns param and no model signature"
        )
    importance, importance_source = _importance_from(info, model)
    bundle = ModelBundle(
        version=str(info["version"]),
        info=info,
        model=model,
        feature_columns=tuple(cols),
        importance=importance,
        importance_source=importance_source,
        calibration=_calibration_of(model),
        loaded_at=dt.datetime.now(dt.UTC),
        smoke_test="skipped: no features table",
    )
    return replace(bundle, smoke_test=smoke_test(bundle, features))


def smoke_test(bundle: ModelBundle, features: FeatureSource | None) -> str:
    """Predict a few real feature rows; :class:`LoadError` unless finite and >= 0."""
    if features is None:
        return "skipped: no features table"
    missing = features.missing(bundle.feature_columns)
    if missing:
        raise LoadError(
            f"champion v{bundle.version}: feature columns missing from features table: {missing[:10]}"
        )
    rows = features.sample(bundle.feature_columns)
    if rows.height == 0:
        return "skipped: no feature rows"
    try:
        out = np.asarray(
            bundle.model.predict(model_input(rows, bundle.feature_columns)), dtype=np.float64
        ).reshape(-1)
    except Exception as exc:
        raise LoadError(
            f"champion v{bundle.version}: smoke test failed ({type(exc).__name__}: {exc})"
        ) from exc
    if out.shape[0] != rows.height or not np.all(np.isfinite(out)) or np.any(out < -1e-9):
        raise LoadError(f"champion v{bundle.version}: smoke test gave invalid predictions")
    return f"ok ({rows.height} rows)"


# --------------------------------------------------------------------------- snapshot
class Resolved(NamedTuple):
    """A request's series after id resolution (a tuple: cheap to make per item)."""

    series_id: str
    item_id: str
    store_id: str
    pos: int = -1
    """Position in the forecast index, -1 when the series has no forecasts."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything a request needs, never mutated; replaced as a whole on reload."""

    forecasts: ForecastIndex | None = None
    features: FeatureSource | None = None
    model: ModelBundle | None = None
    errors: dict[str, str] = field(default_factory=dict)
    stores: frozenset[str] = frozenset()
    store_parts: tuple[int, ...] = ()
    """Distinct numbers of ``_``-separated parts of the store ids, most first."""
    resolved: dict[tuple[str, str | None], Resolved] = field(default_factory=dict, repr=False)
    """Memo of :meth:`resolve` successes (a pure function of this snapshot)."""

    @classmethod
    def compose(
        cls,
        forecasts: ForecastIndex | None,
        features: FeatureSource | None,
        model: ModelBundle | None,
        errors: dict[str, str],
    ) -> Snapshot:
        stores: set[str] = set()
        if forecasts is not None:
            stores.update(forecasts.series_store)
        if features is not None:
            stores.update(s for _, s in features.series.values() if s)
        parts = tuple(sorted({s.count("_") + 1 for s in stores}, reverse=True))
        return cls(forecasts, features, model, dict(errors), frozenset(stores), parts)

    @property
    def ready(self) -> bool:
        return self.forecasts is not None and self.model is not None

    @property
    def data_start(self) -> dt.date | None:
        """First day of the features table (``None`` until it is loaded)."""
        return self.features.min_date if self.features else None

    @property
    def data_end(self) -> dt.date | None:
        dates = [
            d
            for d in (
                self.features.max_date if self.features else None,
                self.forecasts.max_date if self.forecasts else None,
            )
            if d is not None
        ]
        return max(dates) if dates else None

    def resolve(self, item_id: str, store_id: str | None) -> Resolved:
        """Accept ``FOODS_1_001`` + ``CA_1`` or ``FOODS_1_001_CA_1``; 404/422 otherwise.

        Successes are memoized (up to :data:`RESOLVE_CACHE_SIZE` spellings): a repeated id
        costs one dict lookup instead of the suffix parsing.
        """
        key = (item_id, store_id)
        found = self.resolved.get(key)
        if found is None:
            found = self._resolve(item_id, store_id)
            if len(self.resolved) < RESOLVE_CACHE_SIZE:
                self.resolved[key] = found
        return found

    def _resolve(self, item_id: str, store_id: str | None) -> Resolved:
        if self.forecasts is None and self.features is None:
            raise PredictionError(503, "no forecasts or features are loaded yet: not ready")
        item = _strip_suffix(item_id)
        suffix_store = self._suffix_store(item)
        if store_id is None:
            if suffix_store is None:
                raise PredictionError(
                    404,
                    f"unknown series '{item_id}': give store_id, or an item_id that ends with "
                    f"a known store (e.g. FOODS_1_001_CA_1)",
                )
            store_id = suffix_store
            item = item[: -len(store_id) - 1]
        else:
            if store_id not in self.stores:
                raise PredictionError(404, f"unknown store_id '{store_id}'")
            if suffix_store is not None:
                if suffix_store != store_id:
                    raise PredictionError(
                        422,
                        f"item_id '{item_id}' ends with store '{suffix_store}' "
                        f"but store_id is '{store_id}'",
                    )
                item = item[: -len(store_id) - 1]
        sid = f"{item}_{store_id}"
        fc = self.forecasts
        if fc is not None and (pos := fc.series_pos.get(sid)) is not None:
            return Resolved(sid, fc.series_item[pos], fc.series_store[pos], pos)
        if self.features is not None and sid in self.features.series:
            it, st = self.features.series[sid]
            return Resolved(sid, it or item, st or store_id)
        raise PredictionError(404, f"unknown item_id '{item}' in store '{store_id}'")

    def _suffix_store(self, item: str) -> str | None:
        """The longest known store that ``item`` ends with (after a ``_``), else ``None``.

        When two stores both match, the longer one ends with ``_`` + the shorter, so it has
        more ``_``-separated parts: trying the part counts from most to fewest finds the
        longest match with one split and one set lookup per count.
        """
        for n in self.store_parts:
            head = item.rsplit("_", n)
            if len(head) == n + 1:
                candidate = item[len(head[0]) + 1 :]
                if candidate in self.stores:
                    return candidate
        return None


def _strip_suffix(series_id: str) -> str:
    if not series_id.endswith(_SUFFIXES):
        return series_id
    for suf in _SUFFIXES:
        if series_id.endswith(suf):
            return series_id[: -len(suf)]
    return series_id


# --------------------------------------------------------------------------- predicting
class QueryLike(Protocol):
    """What :func:`plan` reads from a request item (a :class:`Query` or a request body)."""

    @property
    def item_id(self) -> str: ...

    @property
    def store_id(self) -> str | None: ...

    @property
    def date(self) -> dt.date: ...


@dataclass(frozen=True, eq=False)
class Query:
    """One validated prediction request."""

    item_id: str
    store_id: str | None
    date: dt.date


def poisson_interval(
    mu: np.ndarray, level: float = INTERVAL_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of a Poisson with mean ``mu`` (for model-computed answers)."""
    from scipy.stats import poisson

    a = (1.0 - level) / 2.0
    mu = np.asarray(mu, dtype=np.float64)
    lo = np.where(mu > 0, poisson.ppf(a, np.maximum(mu, 1e-12)), 0.0)
    hi = np.where(mu > 0, poisson.ppf(1.0 - a, np.maximum(mu, 1e-12)), 0.0)
    return np.minimum(lo, mu), np.maximum(hi, mu)


@dataclass(eq=False)
class Plan:
    """Answers found in the forecasts, plus the queries the model must compute."""

    out: list[dict[str, Any] | None]
    fallback: list[tuple[int, Resolved, dt.date]]
    timestamp: str


def plan(snapshot: Snapshot, queries: Sequence[QueryLike], now: dt.datetime) -> Plan:
    """Resolve every query; answer from the forecasts when possible (fast, no I/O).

    Ids are resolved one by one (dict lookups); the forecast rows of all queries are then
    located and read with vectorized numpy indexing. Raises :class:`PredictionError` for
    the first bad item (unknown ids, dates outside the data).
    """
    ts = now.isoformat().replace("+00:00", "Z")
    resolved, errors = _resolve_all(snapshot, queries)
    out: list[dict[str, Any] | None] = [None] * len(queries)
    if snapshot.forecasts is not None:
        _answer_from_forecasts(snapshot.forecasts, queries, resolved, out, ts)
    fallback = _fallback_or_errors(snapshot, queries, resolved, out, errors)
    if errors:
        errors.sort(key=lambda e: e[0])
        _raise_collected(errors, len(queries))
    return Plan(out, fallback, ts)


def _resolve_all(
    snapshot: Snapshot, queries: Sequence[QueryLike]
) -> tuple[list[Resolved | None], list[tuple[int, PredictionError]]]:
    resolved: list[Resolved | None] = []
    errors: list[tuple[int, PredictionError]] = []
    for k, q in enumerate(queries):
        try:
            resolved.append(snapshot.resolve(q.item_id, q.store_id))
        except PredictionError as exc:
            resolved.append(None)
            errors.append((k, exc))
    return resolved, errors


def _answer_from_forecasts(
    fc: ForecastIndex,
    queries: Sequence[QueryLike],
    resolved: Sequence[Resolved | None],
    out: list[dict[str, Any] | None],
    ts: str,
) -> None:
    """Fill ``out`` for the queries whose (series, day) is in the forecasts."""
    ks: list[int] = []
    poss: list[int] = []
    days: list[int] = []
    for k, r in enumerate(resolved):
        if r is not None and r.pos >= 0:
            ks.append(k)
            poss.append(r.pos)
            days.append(_epoch_day(queries[k].date))
    if not ks:
        return
    if len(ks) <= 8:  # scalar lookups beat numpy call overhead for a few items
        rows = np.array(
            [-1 if (r := fc.row(p, d)) is None else r for p, d in zip(poss, days, strict=True)],
            dtype=np.int64,
        )
    else:
        rows = fc.rows(np.asarray(poss, dtype=np.int64), np.asarray(days, dtype=np.int64))
    hit = rows >= 0
    sel = rows[hit]
    pred = fc.pred[sel].tolist()
    lower = fc.lower[sel].tolist()
    upper = fc.upper[sel].tolist()
    mv = [fc.model_versions[c] for c in fc.version_code[sel].tolist()]
    for j, k in enumerate(np.asarray(ks)[hit].tolist()):
        r = resolved[k]
        assert r is not None
        out[k] = {
            "item_id": r.item_id,
            "store_id": r.store_id,
            "date": queries[k].date.isoformat(),
            "predicted_sales": pred[j],
            "prediction_interval": {"lower": lower[j], "upper": upper[j]},
            "model_version": mv[j],
            "source": "batch_forecast",
            "timestamp": ts,
        }


def _fallback_or_errors(
    snapshot: Snapshot,
    queries: Sequence[QueryLike],
    resolved: Sequence[Resolved | None],
    out: list[dict[str, Any] | None],
    errors: list[tuple[int, PredictionError]],
) -> list[tuple[int, Resolved, dt.date]]:
    """Queries not answered by the forecasts: for the model, or 422 outside the data."""
    fallback: list[tuple[int, Resolved, dt.date]] = []
    start, end = snapshot.data_start, snapshot.data_end
    for k, q in enumerate(queries):
        r = resolved[k]
        if out[k] is not None or r is None:
            continue
        if start is not None and q.date < start:
            errors.append(
                (k, PredictionError(422, f"date {q.date} is before the data starts ({start})"))
            )
        elif end is not None and q.date > end:
            errors.append(
                (
                    k,
                    PredictionError(
                        422, f"date {q.date} is beyond the forecast horizon (last day {end})"
                    ),
                )
            )
        else:
            fallback.append((k, r, q.date))
    return fallback


def complete(snapshot: Snapshot, p: Plan) -> list[dict[str, Any]]:
    """Compute the fallback queries with the champion (blocking I/O + model call)."""
    if p.fallback:
        _predict_with_model(snapshot, p.fallback, p.out, p.timestamp)
    return [o for o in p.out if o is not None]


def predict(
    snapshot: Snapshot, queries: Sequence[QueryLike], now: dt.datetime
) -> list[dict[str, Any]]:
    """Answer every query or raise :class:`PredictionError` (first failing item, indexed).

    Dates in the forecasts come from the batch export (``source="batch_forecast"``); other
    dates inside the features table are computed with the champion (``source="model"``).
    """
    return complete(snapshot, plan(snapshot, queries, now))


def _raise_collected(errors: list[tuple[int, PredictionError]], n: int) -> None:
    k, first = errors[0]
    if n == 1:
        raise first
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise PredictionError(first.status, f"items[{k}]: {first.message}{more}")


def _predict_with_model(
    snapshot: Snapshot,
    fallback: list[tuple[int, Resolved, dt.date]],
    out: list[dict[str, Any] | None],
    ts: str,
) -> None:
    model, feats = snapshot.model, snapshot.features
    if model is None or feats is None:
        what = "model" if model is None else "features table"
        k, r, d = fallback[0]
        raise PredictionError(
            503,
            f"{r.series_id} on {d} is not in the batch forecasts and the {what} needed to "
            f"compute it is not loaded",
        )
    pairs = [(r.series_id, d) for _, r, d in fallback]
    try:
        rows = feats.fetch(pairs, model.feature_columns)
    except Exception as exc:  # file replaced/corrupt under us
        logger.exception("feature lookup failed")
        raise PredictionError(503, f"feature lookup failed ({type(exc).__name__})") from exc
    pos = {
        (sid, d): i
        for i, (sid, d) in enumerate(zip(rows["id"].to_list(), rows["date"].to_list(), strict=True))
    }
    missing = [(k, r, d) for k, r, d in fallback if (r.series_id, d) not in pos]
    if missing:
        errs = [
            (k, PredictionError(404, f"no feature row for {r.series_id} on {d}"))
            for k, r, d in missing
        ]
        _raise_collected(errs, len(out))
    try:
        pts = model.predict(rows)
    except PredictionError:
        raise
    except Exception as exc:
        logger.exception("model prediction failed")
        raise PredictionError(
            503, f"model v{model.version} failed to predict ({type(exc).__name__})"
        ) from exc
    interval = interval_from_calibration(model.calibration, pts)
    lo, hi = interval if interval is not None else poisson_interval(pts)
    for k, r, d in fallback:
        i = pos[(r.series_id, d)]
        out[k] = {
            "item_id": r.item_id,
            "store_id": r.store_id,
            "date": d.isoformat(),
            "predicted_sales": float(pts[i]),
            "prediction_interval": {"lower": float(lo[i]), "upper": float(hi[i])},
            "model_version": model.version,
            "source": "model",
            "timestamp": ts,
        }


# --------------------------------------------------------------------------- state
@dataclass
class ReloadStatus:
    """Book-keeping of the reload loop (shown by /health)."""

    last_check: dt.datetime | None = None
    checks: int = 0
    swaps: int = 0
    failed_versions: dict[str, str] = field(default_factory=dict)


class ServiceState:
    """Holds the current :class:`Snapshot`; ``refresh`` builds and swaps a new one.

    Readers just read ``state.snapshot`` (one attribute load, atomic under the GIL) and
    use that object for the whole request.
    """

    def __init__(self, on_swap: Any | None = None) -> None:
        self.snapshot: Snapshot = Snapshot()
        self.status = ReloadStatus()
        self.started_at = dt.datetime.now(dt.UTC)
        self._lock = threading.Lock()
        self._on_swap = on_swap

    def refresh(self) -> bool:
        """Pick up new files / champion; keep the old parts on failure. True if swapped."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        cur = self.snapshot
        errors = dict(cur.errors)
        failed = self.status.failed_versions
        changed = False
        t0 = time.perf_counter()

        fc = cur.forecasts
        fc_path = store.exports_dir() / store.FORECASTS_FILE
        fc_ver = store.file_version(fc_path)
        if fc_ver != (fc.version if fc else None) and fc_ver != failed.get("forecasts"):
            try:
                new_fc = ForecastIndex.load()
                if new_fc is not None:
                    fc, changed = new_fc, True
                    errors.pop("forecasts", None)
                    failed.pop("forecasts", None)
                elif fc is not None:
                    errors["forecasts"] = (
                        f"{fc_path.name} disappeared (serving the previous forecasts)"
                    )

            except LoadError as exc:
                errors["forecasts"] = f"{exc} (serving the previous forecasts)" if fc else str(exc)
                failed["forecasts"] = fc_ver or ""
                logger.error("forecasts reload failed: %s", exc)

        fs = cur.features
        fs_ver = store.file_version(store.features_path())
        if fs_ver != (fs.version if fs else None) and fs_ver != failed.get("features"):
            try:
                new_fs = FeatureSource.load()
                if new_fs is not None:
                    fs, changed = new_fs, True
                    errors.pop("features", None)
                    failed.pop("features", None)
                elif fs is not None:
                    errors["features"] = "features table disappeared (using the previous scan)"

            except LoadError as exc:
                errors["features"] = str(exc)
                failed["features"] = fs_ver or ""
                logger.error("features reload failed: %s", exc)

        model = cur.model
        try:
            champ = store.champion_version()
            if errors.get("model", "").startswith("registry unreachable"):
                errors.pop("model")
        except Exception as exc:
            champ = model.version if model else None
            errors["model"] = f"registry unreachable ({type(exc).__name__}: {exc})"
        if champ != (model.version if model else None) and champ != failed.get("model"):
            try:
                new_model = load_model_bundle(fs)
                if new_model is not None:
                    model, changed = new_model, True
                    errors.pop("model", None)
                    failed.pop("model", None)
                elif model is not None:
                    errors["model"] = "no champion alias any more (serving the previous model)"

            except LoadError as exc:
                errors["model"] = f"{exc} (serving the previous model)" if model else str(exc)
                failed["model"] = champ or ""
                logger.error("model reload failed: %s", exc)
        elif model is not None and fs is not cur.features and fs is not None:
            try:  # new features table: make sure the serving model still works with it
                smoke_test(model, fs)
            except LoadError as exc:
                errors["features"] = f"{exc} (model fallback may fail)"

        self.status.last_check = dt.datetime.now(dt.UTC)
        self.status.checks += 1
        if changed or errors != cur.errors:
            self.snapshot = Snapshot.compose(fc, fs, model, errors)  # the atomic swap
            if changed:
                self.status.swaps += 1
                logger.info(
                    "snapshot swapped: forecasts=%s model=%s features=%s in %.2fs",
                    fc.version if fc else None,
                    model.version if model else None,
                    fs.version if fs else None,
                    time.perf_counter() - t0,
                )
            if self._on_swap is not None:
                self._on_swap(self.snapshot)
        return changed
