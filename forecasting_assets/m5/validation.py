"""Data-quality rules for the M5 files: pandera (polars backend) schemas plus cross-file checks.

Every rule returns a :class:`CheckOutcome` whose message names the file, the column, how many
rows are at fault and the first few of them (as 1-based line numbers of the CSV file, the
header being line 1), so a user can open the file at the right place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Literal

import pandera.polars as pa
import polars as pl

from forecasting_assets.m5.readers import WEEKDAYS, day_number

MAX_LISTED = 5
SERIES_SUFFIXES = ("_evaluation", "_validation")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one named rule on one file (or a pair of files)."""

    name: str
    file: str
    passed: bool
    message: str
    failing_rows: int = 0
    severity: Severity = "error"
    details: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> bool:
        """True when downstream assets must not run on this data."""
        return not self.passed and self.severity == "error"

    def as_dict(self) -> dict:
        return asdict(self)


CHECKS: dict[str, tuple[str, ...]] = {
    "calendar": ("calendar_schema", "calendar_contiguous"),
    "sales": ("sales_schema", "sales_values", "sales_hierarchy"),
    "prices": ("prices_schema",),
    "consistency": ("calendar_covers_sales", "price_weeks_in_calendar", "sales_have_prices"),
}
"""Check names per table: the asset checks the Dagster assets declare."""

CALENDAR_SCHEMA = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date, nullable=False, unique=True),
        "wm_yr_wk": pa.Column(pl.Int16, nullable=False),
        "weekday": pa.Column(pl.String, pa.Check.isin(WEEKDAYS), nullable=False),
        "wday": pa.Column(pl.Int8, pa.Check.in_range(1, 7), nullable=False),
        "month": pa.Column(pl.Int8, pa.Check.in_range(1, 12), nullable=False),
        "year": pa.Column(pl.Int16, pa.Check.in_range(1900, 2200), nullable=False),
        "d": pa.Column(pl.String, pa.Check.str_matches(r"^d_\d+$"), nullable=False, unique=True),
        "event_name_1": pa.Column(pl.String, nullable=True),
        "event_type_1": pa.Column(pl.String, nullable=True),
        "event_name_2": pa.Column(pl.String, nullable=True),
        "event_type_2": pa.Column(pl.String, nullable=True),
        "snap_CA": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=False),
        "snap_TX": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=False),
        "snap_WI": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=False),
    },
    name="calendar",
)

SALES_ID_SCHEMA = pa.DataFrameSchema(
    {
        "id": pa.Column(pl.String, nullable=False, unique=True),
        "item_id": pa.Column(pl.String, nullable=False),
        "dept_id": pa.Column(pl.String, nullable=False),
        "cat_id": pa.Column(pl.String, nullable=False),
        "store_id": pa.Column(pl.String, nullable=False),
        "state_id": pa.Column(pl.String, nullable=False),
    },
    name="sales",
)

PRICES_SCHEMA = pa.DataFrameSchema(
    {
        "store_id": pa.Column(pl.String, nullable=False),
        "item_id": pa.Column(pl.String, nullable=False),
        "wm_yr_wk": pa.Column(pl.Int16, nullable=False),
        "sell_price": pa.Column(pl.Float32, pa.Check.gt(0), nullable=False),
    },
    name="prices",
)
PRICES_KEY = ("store_id", "item_id", "wm_yr_wk")


def day_columns(sales: pl.DataFrame) -> list[str]:
    """The ``d_N`` columns of a wide sales frame, in file order."""
    return [c for c in sales.columns if day_number(c) is not None]


def strip_suffix(column: pl.Expr) -> pl.Expr:
    """Series id without its ``_evaluation``/``_validation`` suffix."""
    return column.str.replace(r"_(evaluation|validation)$", "")


# ---------------------------------------------------------------------------- per file


def validate_calendar(calendar: pl.DataFrame, file: str) -> list[CheckOutcome]:
    """Schema (columns, dtypes, ranges, unique ``date`` and ``d``) and contiguity."""
    with_line = calendar.with_columns(_line())
    order = with_line.with_columns(
        pl.col("d").str.strip_prefix("d_").cast(pl.Int32, strict=False).alias("_day")
    ).sort("_day", nulls_last=True)
    gaps = order.filter(
        (pl.col("_day").diff() != 1) | (pl.col("date").diff() != pl.duration(days=1))
    )
    contiguous = _outcome(
        "calendar_contiguous",
        file,
        _rows_issue(
            "d/date",
            "not contiguous (each row must be the day after the previous one)",
            gaps.select("_line", pl.col("d")),
        ),
    )
    return [_schema_outcome("calendar_schema", CALENDAR_SCHEMA, calendar, file), contiguous]


def validate_sales(sales: pl.DataFrame, file: str) -> list[CheckOutcome]:
    """Id/hierarchy schema, non-negative complete day values and hierarchy consistency."""
    days = day_columns(sales)
    value_issues = [*day_column_issues(days), *_day_value_issues(sales, days)]

    rows = sales.select(list(SALES_ID_SCHEMA.columns)).with_columns(_line())
    consistency = [
        (
            "id",
            "must equal item_id + '_' + store_id + '_evaluation' (or '_validation')",
            (strip_suffix(pl.col("id")) != pl.col("item_id") + "_" + pl.col("store_id"))
            | ~pl.col("id").str.contains(r"_(evaluation|validation)$"),
        ),
        (
            "state_id",
            "must match the store (store_id starts with state_id + '_')",
            ~pl.col("store_id").str.starts_with(pl.col("state_id") + "_"),
        ),
        (
            "dept_id",
            "must be the item's department (item_id starts with dept_id + '_')",
            ~pl.col("item_id").str.starts_with(pl.col("dept_id") + "_"),
        ),
        (
            "cat_id",
            "must be the department's category (dept_id starts with cat_id + '_')",
            ~pl.col("dept_id").str.starts_with(pl.col("cat_id") + "_"),
        ),
    ]
    hierarchy_issues = [
        _rows_issue(col, rule, rows.filter(bad.fill_null(True)).select("_line", col))
        for col, rule, bad in consistency
    ]
    return [
        _schema_outcome(
            "sales_schema", SALES_ID_SCHEMA, sales.select(list(SALES_ID_SCHEMA.columns)), file
        ),
        _outcome("sales_values", file, *value_issues),
        _outcome("sales_hierarchy", file, *hierarchy_issues),
    ]


def validate_prices(prices: pl.DataFrame, file: str) -> list[CheckOutcome]:
    """Schema: complete keys, positive prices, unique (store_id, item_id, wm_yr_wk)."""
    # Uniqueness on integer codes: ~10x faster than pandera's multi-column check on strings.
    duplicated = pl.struct(
        pl.col("store_id").cast(pl.Categorical).to_physical(),
        pl.col("item_id").cast(pl.Categorical).to_physical(),
        "wm_yr_wk",
    ).is_duplicated()
    duplicates = prices.with_columns(_line()).filter(duplicated)
    key_issue = _rows_issue(
        ", ".join(PRICES_KEY),
        "failed uniqueness of the key",
        duplicates.select("_line", pl.concat_str(PRICES_KEY, separator="/").alias("key")),
    )
    return [_outcome("prices_schema", file, *_schema_issues(PRICES_SCHEMA, prices), key_issue)]


def day_column_issues(days: list[str]) -> list[_Issue]:
    """Missing and out-of-order ``d_N`` columns, each named (duplicates fail in the reader)."""
    numbers = [n for n in (day_number(c) for c in days) if n is not None]
    if not numbers:
        return []
    span = f"day columns must run d_{min(numbers)}, d_{min(numbers) + 1}, … d_{max(numbers)}"
    issues = []
    missing = sorted(set(range(min(numbers), max(numbers) + 1)) - set(numbers))
    if missing:
        issues.append(_column_issue(missing, f"is missing ({span}, consecutive, no gaps)"))
    late = [(n, prev) for prev, n in pairwise(numbers) if n < prev]
    if late:
        issues.append(
            _column_issue(
                [n for n, _ in late],
                f"is out of order ({span}, consecutive, in increasing order)",
                [f"d_{n} after d_{prev}" for n, prev in late[:MAX_LISTED]],
            )
        )
    return issues


def _column_issue(numbers: list[int], rule: str, examples: list[str] | None = None) -> _Issue:
    names = [f"d_{n}" for n in numbers]
    listed = ", ".join(names[:MAX_LISTED]) + (", …" if len(names) > MAX_LISTED else "")
    return _Issue(listed, rule, len(names), examples or [], unit="column(s)")


# ---------------------------------------------------------------------------- across files


def validate_consistency(
    calendar: pl.DataFrame,
    sales: pl.DataFrame,
    prices: pl.DataFrame,
    files: dict[str, str],
    horizon: int,
) -> list[CheckOutcome]:
    """Calendar covers the sales days plus the horizon; prices refer to known weeks and series.

    ``calendar`` has integer day numbers in ``d`` (as stored by ``raw_calendar``).
    """
    numbers = [day_number(c) for c in day_columns(sales)]
    first, last = min(numbers), max(numbers)
    needed = set(range(first, last + horizon + 1))
    missing_days = sorted(needed - set(calendar["d"].to_list()))
    cover_issues = []
    if missing_days:
        cover_issues.append(
            _Issue(
                "d",
                f"calendar must cover every d_ column of the sales file plus the {horizon} days "
                f"after it (d_{first}..d_{last + horizon})",
                len(missing_days),
                [f"d_{n}" for n in missing_days[:MAX_LISTED]],
            )
        )
    states = sales["state_id"].unique().sort().to_list()
    no_snap = [s for s in states if f"snap_{s}" not in calendar.columns]
    if no_snap:
        cover_issues.append(
            _Issue("state_id", "has no snap_<state> column in the calendar", len(no_snap), no_snap)
        )
    cover = _outcome(
        "calendar_covers_sales", f"{files['calendar']} vs {files['sales']}", *cover_issues
    )

    unknown_weeks = prices.with_columns(_line()).filter(
        ~pl.col("wm_yr_wk").is_in(calendar["wm_yr_wk"].unique().implode())
    )
    weeks = _outcome(
        "price_weeks_in_calendar",
        f"{files['prices']} vs {files['calendar']}",
        _rows_issue(
            "wm_yr_wk", "is not a week of the calendar", unknown_weeks.select("_line", "wm_yr_wk")
        ),
    )

    priced = prices.select("store_id", "item_id").unique()
    unpriced = (
        sales.select("id", "store_id", "item_id")
        .with_columns(_line())
        .join(priced, on=["store_id", "item_id"], how="anti")
        .sort("_line")
    )
    no_prices = _outcome(
        "sales_have_prices",
        f"{files['sales']} vs {files['prices']}",
        _rows_issue(
            "id",
            "series has no price rows at all (treated as never on sale; prices stay null)",
            unpriced.select("_line", "id"),
        ),
        severity="warning",
    )
    return [cover, weeks, no_prices]


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Issue:
    column: str
    rule: str
    count: int
    examples: list[str]
    unit: str = "row(s)"

    def describe(self) -> str:
        first = f", first: {', '.join(self.examples)}" if self.examples else ""
        return f"column '{self.column}' {self.rule}: {self.count} {self.unit} at fault{first}"


def _line() -> pl.Expr:
    return (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("_line")


def _rows_issue(column: str, rule: str, bad: pl.DataFrame) -> _Issue | None:
    """Issue from a frame of offending rows with a ``_line`` column and the value column."""
    if bad.height == 0:
        return None
    value_col = next(c for c in bad.columns if c != "_line")
    examples = [
        f"line {line} ({value!r})"
        for line, value in bad.select("_line", value_col).head(MAX_LISTED).iter_rows()
    ]
    return _Issue(column, rule, bad.height, examples)


def _day_value_issues(sales: pl.DataFrame, days: list[str]) -> list[_Issue]:
    """Nulls and negatives in the d_N columns, found in one vectorised pass."""
    counts = sales.select(
        *[pl.col(c).is_null().sum().alias(f"null|{c}") for c in days],
        *[(pl.col(c) < 0).sum().alias(f"neg|{c}") for c in days],
    ).row(0, named=True)
    issues = []
    for key, count in counts.items():
        if not count:
            continue
        kind, column = key.split("|")
        bad_expr = pl.col(column).is_null() if kind == "null" else pl.col(column) < 0
        rule = "must not be empty (missing value)" if kind == "null" else "must be >= 0"
        bad = sales.select(_line(), pl.col("id"), pl.col(column)).filter(bad_expr)
        examples = [
            f"line {line} (id {sid}, value {value})"
            for line, sid, value in bad.head(MAX_LISTED).iter_rows()
        ]
        issues.append(_Issue(column, rule, count, examples))
    return issues


def _schema_issues(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> list[_Issue]:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        return list(_pandera_issues(err.failure_cases))
    return []


def _schema_outcome(
    name: str, schema: pa.DataFrameSchema, frame: pl.DataFrame, file: str
) -> CheckOutcome:
    return _outcome(name, file, *_schema_issues(schema, frame))


def _pandera_issues(cases: pl.DataFrame) -> Iterable[_Issue]:
    cases = cases.with_columns(pl.col("column").fill_null("<table>"))
    for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
        with_rows = group.filter(pl.col("index").is_not_null()).sort("index")
        examples = [
            f"line {index + 2} ({value!r})"
            for index, value in with_rows.select("index", "failure_case")
            .head(MAX_LISTED)
            .iter_rows()
        ]
        if not examples:
            examples = [str(v) for v in group["failure_case"].head(MAX_LISTED).to_list()]
        count = with_rows.height or group.height
        yield _Issue(str(column), f"failed {check}", count, examples)


def _outcome(
    name: str, file: str, *issues: _Issue | None, severity: Severity = "error"
) -> CheckOutcome:
    found = [i for i in issues if i is not None]
    if not found:
        return CheckOutcome(
            name=name, file=file, passed=True, message=f"{file}: {name} passed", severity=severity
        )
    details = [f"{file}: {i.describe()}" for i in found]
    return CheckOutcome(
        name=name,
        file=file,
        passed=False,
        message="; ".join(details),
        failing_rows=sum(i.count for i in found),
        severity=severity,
        details=details,
    )
