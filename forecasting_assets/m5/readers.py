"""Find, fingerprint and read the three M5 files into typed polars frames.

Readers never return half-parsed data: a file that cannot be read (missing, empty, not gzip,
wrong delimiter, ragged rows, values of the wrong type) raises :class:`M5FileError` with a
message naming the file, the column and the lines at fault.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from pathlib import Path

import polars as pl

FILE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "calendar": ("calendar.csv",),
    "sales": ("sales_train_evaluation.csv", "sales_train_validation.csv"),
    "prices": ("sell_prices.csv",),
}
"""Accepted file names per M5 table, in order of preference (each also as ``.csv.gz``)."""

CALENDAR_DTYPES: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "wm_yr_wk": pl.Int16(),
    "weekday": pl.String(),
    "wday": pl.Int8(),
    "month": pl.Int8(),
    "year": pl.Int16(),
    "d": pl.String(),
    "event_name_1": pl.String(),
    "event_type_1": pl.String(),
    "event_name_2": pl.String(),
    "event_type_2": pl.String(),
    "snap_CA": pl.Int8(),
    "snap_TX": pl.Int8(),
    "snap_WI": pl.Int8(),
}
WEEKDAYS: tuple[str, ...] = (
    "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
)  # fmt: skip
"""Weekday names by M5 ``wday`` - 1 (M5: 1 = Saturday)."""
SALES_ID_COLUMNS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
PRICES_DTYPES: dict[str, pl.DataType] = {
    "store_id": pl.String(),
    "item_id": pl.String(),
    "wm_yr_wk": pl.Int16(),
    "sell_price": pl.Float32(),
}
DAY_COLUMN = re.compile(r"^d_(\d+)$")
MAX_LISTED_ROWS = 5


class M5FileError(ValueError):
    """An M5 input file is missing or cannot be parsed; the message says where and why."""


def find_m5_files(raw_dir: Path) -> dict[str, Path | None]:
    """Locate calendar, sales and prices files (plain or gzip) in ``raw_dir``."""
    found: dict[str, Path | None] = {}
    for table, names in FILE_CANDIDATES.items():
        found[table] = next(
            (
                raw_dir / f"{name}{ext}"
                for name in names
                for ext in ("", ".gz")
                if (raw_dir / f"{name}{ext}").is_file()
            ),
            None,
        )
    return found


def require_m5_file(raw_dir: Path, table: str) -> Path:
    """Return the path of ``table``'s file or raise a clear error naming what was looked for."""
    path = find_m5_files(raw_dir)[table]
    if path is None:
        names = ", ".join(f"{n}[.gz]" for n in FILE_CANDIDATES[table])
        raise M5FileError(f"No {table} file in {raw_dir}: expected one of {names}")
    return path


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the data version of a raw asset."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def day_number(column: str) -> int | None:
    """``"d_12"`` -> 12; anything else -> None."""
    match = DAY_COLUMN.match(column)
    return int(match.group(1)) if match else None


def read_calendar(path: Path) -> pl.DataFrame:
    """Read ``calendar.csv`` with the M5 dtypes (``d`` kept as its ``d_N`` label)."""
    return _read_typed(path, CALENDAR_DTYPES)


def read_sales(path: Path) -> pl.DataFrame:
    """Read the wide sales file: id/hierarchy columns as strings, ``d_N`` columns as Int32."""
    header = _read_header(path)
    dtypes: dict[str, pl.DataType] = {c: pl.String() for c in SALES_ID_COLUMNS}
    day_columns = [c for c in header if day_number(c) is not None]
    if not day_columns:
        raise M5FileError(f"{path.name}: no d_N day columns in the header")
    dtypes.update({c: pl.Int32() for c in day_columns})
    return _read_typed(path, dtypes, header=header)


def read_prices(path: Path) -> pl.DataFrame:
    """Read ``sell_prices.csv`` with compact dtypes."""
    return _read_typed(path, PRICES_DTYPES)


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def _read_header(path: Path) -> list[str]:
    if not path.is_file():
        raise M5FileError(f"{path}: file not found")
    try:
        with _open_text(path) as fh:
            first = fh.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise M5FileError(f"{path.name}: cannot be read as (gzip) text: {exc}") from exc
    first = first.rstrip("\r\n")
    if not first.strip():
        raise M5FileError(f"{path.name}: file is empty (no header line)")
    columns = first.split(",")
    repeated = sorted({c for c in columns if columns.count(c) > 1}, key=columns.index)
    if repeated:
        raise M5FileError(
            f"{path.name}: column(s) {', '.join(repeated)} appear more than once in the header"
        )
    if len(columns) == 1:
        for sep in (";", "\t", "|"):
            if sep in first:
                raise M5FileError(
                    f"{path.name}: header has one column {first[:60]!r}: expected comma-separated "
                    f"values but the file seems to use {sep!r} as delimiter"
                )
    return columns


def _read_typed(
    path: Path, dtypes: dict[str, pl.DataType], header: list[str] | None = None
) -> pl.DataFrame:
    header = header if header is not None else _read_header(path)
    missing = [c for c in dtypes if c not in header]
    if missing:
        raise M5FileError(
            f"{path.name}: missing required column(s) {missing}; header has {header[:8]}"
            + ("…" if len(header) > 8 else "")
        )
    try:
        return pl.read_csv(path, schema_overrides=dtypes, columns=list(dtypes))
    except Exception as exc:  # polars raises several types; diagnose precisely below
        raise _diagnose(path, dtypes, exc) from exc


def _diagnose(path: Path, dtypes: dict[str, pl.DataType], error: Exception) -> M5FileError:
    """Re-read everything as text to find which column and lines broke the typed read."""
    try:
        text = pl.read_csv(path, infer_schema=False, columns=list(dtypes))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return M5FileError(
            f"{path.name}: cannot be parsed as CSV (truncated, garbled or ragged rows?): {reason}"
        )
    problems = []
    for column, dtype in dtypes.items():
        if dtype == pl.String():
            continue
        parsed = text.select(
            pl.col(column).str.strip_chars().cast(dtype, strict=False).alias("parsed"),
            pl.col(column).alias("raw"),
            (pl.int_range(pl.len()) + 2).alias("line"),
        )
        bad = parsed.filter(pl.col("raw").is_not_null() & pl.col("parsed").is_null())
        if bad.height:
            examples = ", ".join(
                f"line {line} ({raw!r})"
                for line, raw in bad.select("line", "raw").head(MAX_LISTED_ROWS).iter_rows()
            )
            problems.append(
                f"column '{column}' expects {dtype}: {bad.height} row(s) at fault, first: {examples}"
            )
    if not problems:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return M5FileError(f"{path.name}: cannot be parsed: {reason}")
    return M5FileError(f"{path.name}: " + "; ".join(problems))
