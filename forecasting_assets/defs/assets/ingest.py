"""Ingestion: raw M5 files -> validated typed tables -> the long daily grid ``sales_long``.

Each asset validates its data *before* anything is written: the checks are blocking asset
checks evaluated in the asset's own step, and on an error the step fails without output, so
the last good materialization stays in place and downstream assets do not run.
"""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from forecasting_assets.contracts import HORIZON, VALIDATION_REPORT_FILE
from forecasting_assets.defs.resources import M5Source, PipelineHome
from forecasting_assets.m5 import readers, validation
from forecasting_assets.m5.transform import calendar_with_day_numbers, sales_long_lazy
from forecasting_assets.m5.validation import CHECKS, CheckOutcome
from forecasting_assets.settings import atomic_write

GROUP = "ingestion"
READ_CHECK = "{table}_readable"


def record_validation(
    home: PipelineHome,
    raw_dir: Path,
    asset: str,
    outcomes: list[CheckOutcome],
    file: dict | None = None,
) -> Path:
    """Merge this asset's check outcomes into ``exports/validation_report.json`` atomically."""
    path = home.exports_dir / VALIDATION_REPORT_FILE
    report = json.loads(path.read_text()) if path.exists() else {"files": {}, "checks": []}
    report["generated_at"] = datetime.now(UTC).isoformat()
    report["raw_dir"] = str(raw_dir)
    report["checks"] = [c for c in report["checks"] if c.get("asset") != asset] + [
        {**o.as_dict(), "asset": asset} for o in outcomes
    ]
    if file is not None:
        report["files"][asset] = file
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str))
    return path


def _check_results(
    home: PipelineHome,
    m5_source: M5Source,
    asset: str,
    outcomes: list[CheckOutcome],
    file: dict | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Report every outcome as an asset check; fail the step if any error-level check failed."""
    record_validation(home, m5_source.folder, asset, outcomes, file)
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=(
                dg.AssetCheckSeverity.ERROR
                if outcome.severity == "error"
                else dg.AssetCheckSeverity.WARN
            ),
            description=outcome.message[:2000],
            metadata={"file": outcome.file, "failing_rows": outcome.failing_rows},
        )
    blocking = [o for o in outcomes if o.blocks]
    if blocking:
        raise dg.Failure(
            description=f"{asset}: {len(blocking)} validation check(s) failed; nothing was "
            "written and downstream assets will not run.\n"
            + "\n".join(o.message for o in blocking),
            allow_retries=False,
        )


def _read_failure(
    home: PipelineHome, m5_source: M5Source, asset: str, table: str, error: readers.M5FileError
) -> dg.Failure:
    outcome = CheckOutcome(
        name=READ_CHECK.format(table=table), file=table, passed=False, message=str(error)
    )
    record_validation(home, m5_source.folder, asset, [outcome])
    return dg.Failure(description=str(error), allow_retries=False)


def _raw_asset(
    table: str,
    read: Callable[[Path], pl.DataFrame],
    validate: Callable[[pl.DataFrame, str], list[CheckOutcome]],
    normalize: Callable[[pl.DataFrame], pl.DataFrame] = lambda frame: frame,
    description: str = "",
) -> dg.AssetsDefinition:
    name = f"raw_{table}"
    specs = [dg.AssetCheckSpec(check, asset=name, blocking=True) for check in CHECKS[table]]

    @dg.asset(
        name=name,
        group_name=GROUP,
        check_specs=specs,
        description=description,
        kinds={"polars", "csv"},
    )
    def _asset(context: dg.AssetExecutionContext, m5_source: M5Source, home: PipelineHome):
        path = m5_source.path_of(table)
        try:
            frame = read(path)
        except readers.M5FileError as error:
            raise _read_failure(home, m5_source, name, table, error) from error
        digest = readers.file_hash(path)
        file = {"path": str(path), "sha256": digest, "rows": frame.height}
        yield from _check_results(home, m5_source, name, validate(frame, path.name), file)
        context.log.info("%s: %d rows from %s (sha256 %s…)", name, frame.height, path, digest[:12])
        yield dg.Output(
            normalize(frame),
            data_version=dg.DataVersion(digest),
            metadata={
                "source_file": str(path),
                "sha256": digest,
                "rows": frame.height,
                "columns": frame.width,
            },
        )

    return _asset


raw_calendar = _raw_asset(
    "calendar",
    readers.read_calendar,
    validation.validate_calendar,
    calendar_with_day_numbers,
    "The M5 calendar (dates, Walmart weeks, events, SNAP days) as a typed table with integer "
    "day numbers `d`. Data version = SHA-256 of the file.",
)
raw_sales = _raw_asset(
    "sales",
    readers.read_sales,
    validation.validate_sales,
    description="The wide M5 sales file (one row per item × store, one Int32 column per day). "
    "Data version = SHA-256 of the file.",
)
raw_prices = _raw_asset(
    "prices",
    readers.read_prices,
    validation.validate_prices,
    description="Weekly sell prices per store × item. Data version = SHA-256 of the file.",
)


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(check, asset="sales_long", blocking=True)
        for check in CHECKS["consistency"]
    ],
)
def sales_long(
    context: dg.AssetExecutionContext,
    raw_calendar: pl.DataFrame,
    raw_sales: pl.DataFrame,
    raw_prices: pl.DataFrame,
    m5_source: M5Source,
    home: PipelineHome,
):
    """Long daily grid: one row per series × day, for every history day plus the 28 days to
    forecast (where `sales` is null), with hierarchy, calendar fields, the series' own SNAP
    flag and the day's price. `is_launched` is false before a series' first sale, so leading
    zeros are not treated as demand. Cross-file checks (calendar covers the sales days and the
    horizon, price weeks exist, series have prices) run before anything is written."""
    files = {table: m5_source.path_of(table).name for table in ("calendar", "sales", "prices")}
    outcomes = validation.validate_consistency(raw_calendar, raw_sales, raw_prices, files, HORIZON)
    yield from _check_results(home, m5_source, "sales_long", outcomes)
    days = validation.day_columns(raw_sales)
    history = raw_calendar.filter(
        pl.col("d").is_between(readers.day_number(days[0]), readers.day_number(days[-1]))
    )
    zeros = raw_sales.select(pl.sum_horizontal(pl.col(days) == 0)).to_series().sum()
    context.log.info(
        "sales_long: %d series × %d days + %d horizon days", raw_sales.height, len(days), HORIZON
    )
    yield dg.Output(
        sales_long_lazy(raw_calendar, raw_sales, raw_prices, horizon=HORIZON),
        metadata={
            "series": raw_sales.height,
            "first_date": str(history["date"].min()),
            "last_history_date": str(history["date"].max()),
            "horizon_days": HORIZON,
            "zero_share": round(float(zeros) / (raw_sales.height * len(days)), 4),
        },
    )
