"""The forecasts export in numpy arrays, indexed by series and day (O(1) lookups)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from forecasting_api.services.errors import LoadError
from forecasting_assets import store
from forecasting_assets.contracts import FORECASTS_FILE

EPOCH = dt.date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
_SUFFIXES = ("_evaluation", "_validation")


def epoch_day(d: dt.date) -> int:
    """Days since 1970-01-01 (polars' physical Date)."""
    return d.toordinal() - _EPOCH_ORDINAL


def strip_suffix(series_id: str) -> str:
    """``FOODS_1_001_CA_1_evaluation`` -> ``FOODS_1_001_CA_1``."""
    for suf in _SUFFIXES:
        if series_id.endswith(suf):
            return series_id[: -len(suf)]
    return series_id


def file_mtime(path: Path) -> dt.datetime | None:
    """Modification time of ``path`` (UTC), ``None`` if it is gone."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=dt.UTC)
    except OSError:
        return None


def forecasts_path() -> Path:
    """Where the pipeline writes the forecasts export."""
    return store.exports_dir() / FORECASTS_FILE


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
            file_modified_at=file_mtime(path),
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
        path = forecasts_path()
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
