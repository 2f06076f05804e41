"""Ingestion and validation through Dagster: every rule fails with a precise message, nothing
downstream runs on bad data, and a failed run leaves the last good outputs in place."""

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from forecasting_assets.defs.assets import ingest
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.resources import M5Source, PipelineHome

INGEST_ASSETS = [ingest.raw_calendar, ingest.raw_sales, ingest.raw_prices, ingest.sales_long]
CAL, SALES, PRICES = "calendar.csv", "sales_train_evaluation.csv", "sell_prices.csv"


def run_ingest(raw_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        INGEST_ASSETS,
        resources={
            "io_manager": AtomicParquetIOManager(),
            "m5_source": M5Source(raw_dir=str(raw_dir), generate_if_empty=False),
            "home": PipelineHome(),
        },
        raise_on_error=False,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every failure description and failed check description of the run, as one string."""
    parts = [
        event.step_failure_data.user_failure_data.description
        if event.step_failure_data.user_failure_data
        else event.step_failure_data.error.message
        for event in result.get_step_failure_events()
    ]
    parts += [e.description or "" for e in result.get_asset_check_evaluations() if not e.passed]
    return "\n".join(p for p in parts if p)


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def edit_cells(path: Path, changes: dict[tuple[int, str], str]) -> None:
    """Set cells of a CSV given (data row index, column) -> raw text."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    for (row, column), value in changes.items():
        cells = lines[row + 1].split(",")
        cells[header.index(column)] = value
        lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def edit_lines(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def drop_column(path: Path, column: str) -> None:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    index = rows[0].index(column)
    path.write_text("\n".join(",".join(r[:index] + r[index + 1 :]) for r in rows) + "\n")


def test_ingest_builds_sales_long_from_generated_data(raw_dir: Path, home: Path) -> None:
    result = run_ingest(raw_dir)
    assert result.success, failure_text(result)
    assert materialized(result) == {"raw_calendar", "raw_sales", "raw_prices", "sales_long"}
    long = pl.read_parquet(home / "assets" / "sales_long.parquet")
    series = pl.read_csv(raw_dir / SALES).height
    assert long.height == series * (400 + 28)
    assert long.group_by("id").agg(pl.col("sales").is_null().sum())["sales"].unique().to_list() == [
        28
    ]
    report = json.loads((home / "exports" / "validation_report.json").read_text())
    assert {c["name"] for c in report["checks"]} >= {
        "calendar_schema",
        "sales_values",
        "prices_schema",
        "calendar_covers_sales",
    }
    assert all(c["passed"] for c in report["checks"] if c["severity"] == "error")


@pytest.mark.slow
def test_real_subset_passes_validation_with_unpriced_series_as_warning(
    real_m5: Path, home: Path
) -> None:
    result = run_ingest(real_m5)
    assert result.success, failure_text(result)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    unpriced = evaluations["sales_have_prices"]
    assert not unpriced.passed and unpriced.severity == dg.AssetCheckSeverity.WARN
    assert "37 row(s)" in unpriced.description
    assert all(e.passed for name, e in evaluations.items() if name != "sales_have_prices")
    long = pl.scan_parquet(home / "assets" / "sales_long.parquet")
    counts = long.select(pl.len(), pl.col("id").n_unique()).collect().row(0)
    assert counts == (5107 * 1969, 5107)


RULE_CASES: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    # name: (file, corruption, substrings the failure must contain)
    "calendar missing column": (
        CAL,
        lambda p: drop_column(p, "snap_WI"),
        [CAL, "missing required column", "snap_WI"],
    ),
    "calendar duplicate date": (
        CAL,
        lambda p: edit_cells(p, {(9, "date"): "2011-02-06"}),
        [CAL, "'date'", "uniqueness", "line 11"],
    ),
    "calendar wday out of range": (
        CAL,
        lambda p: edit_cells(p, {(4, "wday"): "9"}),
        [CAL, "'wday'", "in_range", "line 6"],
    ),
    "calendar bad d label": (
        CAL,
        lambda p: edit_cells(p, {(2, "d"): "day_3"}),
        [CAL, "'d'", "str_matches", "line 4"],
    ),
    "calendar snap not 0/1": (
        CAL,
        lambda p: edit_cells(p, {(7, "snap_TX"): "2"}),
        [CAL, "'snap_TX'", "isin", "line 9"],
    ),
    "calendar gap": (
        CAL,
        lambda p: edit_lines(p, lambda ls: ls[:50] + ls[51:]),
        [CAL, "not contiguous", "line 51 ('d_51')"],
    ),
    "sales negative": (
        SALES,
        lambda p: edit_cells(p, {(2, "d_10"): "-1"}),
        [SALES, "'d_10'", ">= 0", "line 4"],
    ),
    "sales not integer": (
        SALES,
        lambda p: edit_cells(p, {(1, "d_5"): "1.5"}),
        [SALES, "'d_5'", "Int32", "line 3", "'1.5'"],
    ),
    "sales missing value": (
        SALES,
        lambda p: edit_cells(p, {(3, "d_7"): ""}),
        [SALES, "'d_7'", "missing value", "line 5"],
    ),
    "sales duplicate id": (
        SALES,
        lambda p: edit_lines(p, lambda ls: [*ls, ls[1]]),
        [SALES, "'id'", "uniqueness"],
    ),
    "sales id inconsistent": (
        SALES,
        lambda p: edit_cells(p, {(1, "id"): "FOODS_9_999_CA_1_evaluation"}),
        [SALES, "'id'", "item_id", "line 3"],
    ),
    "sales state mismatch": (
        SALES,
        lambda p: edit_cells(p, {(0, "state_id"): "WI"}),
        [SALES, "'state_id'", "must match the store", "line 2"],
    ),
    "sales dept mismatch": (
        SALES,
        lambda p: edit_cells(p, {(5, "dept_id"): "ZZZ_9"}),
        [SALES, "'dept_id'", "line 7"],
    ),
    "sales day gap": (SALES, lambda p: drop_column(p, "d_50"), [SALES, "consecutive"]),
    "prices not positive": (
        PRICES,
        lambda p: edit_cells(p, {(3, "sell_price"): "0"}),
        [PRICES, "'sell_price'", "greater_than(0)", "line 5"],
    ),
    "prices missing": (
        PRICES,
        lambda p: edit_cells(p, {(6, "sell_price"): ""}),
        [PRICES, "'sell_price'", "not_nullable", "line 8"],
    ),
    "prices duplicate key": (
        PRICES,
        lambda p: edit_lines(p, lambda ls: [*ls, ls[1]]),
        [PRICES, "store_id, item_id, wm_yr_wk", "uniqueness"],
    ),
    "prices week not integer": (
        PRICES,
        lambda p: edit_cells(p, {(2, "wm_yr_wk"): "abc"}),
        [PRICES, "'wm_yr_wk'", "Int16", "line 4", "'abc'"],
    ),
    "calendar does not cover horizon": (
        CAL,
        lambda p: edit_lines(p, lambda ls: ls[:-5]),
        ["calendar must cover", "28 days after"],
    ),
    "price week not in calendar": (
        PRICES,
        lambda p: edit_cells(p, {(0, "wm_yr_wk"): "11999"}),
        [PRICES, "'wm_yr_wk'", "not a week of the calendar", "line 2"],
    ),
}


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_each_rule_fails_with_file_column_rows_and_blocks_downstream(
    case: str, raw_dir: Path, home: Path
) -> None:
    file, corrupt, expected = RULE_CASES[case]
    corrupt(raw_dir / file)
    result = run_ingest(raw_dir)
    assert not result.success
    text = failure_text(result)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in failure message:\n{text}"
    assert "sales_long" not in materialized(result)
    assert not (home / "assets" / "sales_long.parquet").exists()
    report = json.loads((home / "exports" / "validation_report.json").read_text())
    assert any(not c["passed"] and c["severity"] == "error" for c in report["checks"])


def _truncated_gzip(path: Path) -> None:
    data = gzip.compress(path.read_bytes())
    path.unlink()
    path.with_suffix(".csv.gz").write_bytes(data[: len(data) // 2])


UNPARSEABLE_CASES: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "empty file": (PRICES, lambda p: p.write_bytes(b""), [PRICES, "empty"]),
    "wrong delimiter": (
        CAL,
        lambda p: p.write_text(p.read_text().replace(",", ";")),
        [CAL, "delimiter", "';'"],
    ),
    "garbled binary": (
        SALES,
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 50),
        [SALES, "cannot be read"],
    ),
    "truncated gzip": (SALES, _truncated_gzip, [SALES + ".gz", "cannot be parsed"]),
    "ragged row": (
        PRICES,
        lambda p: edit_lines(p, lambda ls: [*ls[:5], ls[5] + ",1,2", *ls[6:]]),
        [PRICES, "cannot be parsed"],
    ),
    "truncated mid-row": (
        SALES,
        lambda p: p.write_text(p.read_text()[:-300]),
        [SALES, "missing value"],
    ),
}


@pytest.mark.parametrize("case", list(UNPARSEABLE_CASES))
def test_unparseable_files_give_a_clear_error(case: str, raw_dir: Path, home: Path) -> None:
    file, corrupt, expected = UNPARSEABLE_CASES[case]
    corrupt(raw_dir / file)
    result = run_ingest(raw_dir)
    assert not result.success
    text = failure_text(result)
    assert "Traceback" not in text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in failure message:\n{text}"
    assert "sales_long" not in materialized(result)


def test_failed_rerun_leaves_earlier_good_outputs_intact(raw_dir: Path, home: Path) -> None:
    assert run_ingest(raw_dir).success
    outputs = {p.name: p.read_bytes() for p in (home / "assets").glob("*.parquet")}
    assert set(outputs) == {
        "raw_calendar.parquet",
        "raw_sales.parquet",
        "raw_prices.parquet",
        "sales_long.parquet",
    }

    edit_cells(raw_dir / SALES, {(2, "d_3"): "-5"})
    failed = run_ingest(raw_dir)
    assert not failed.success
    assert {p.name: p.read_bytes() for p in (home / "assets").glob("*.parquet")} == outputs
    assert not list((home / "assets").glob(".*.tmp"))

    edit_cells(raw_dir / SALES, {(2, "d_3"): "4"})
    fixed = run_ingest(raw_dir)
    assert fixed.success
    long = pl.read_parquet(home / "assets" / "sales_long.parquet")
    first_series = long["id"].cast(pl.String)[0]
    third = long.filter(
        pl.col("id").cast(pl.String) == long["id"].unique(maintain_order=True).cast(pl.String)[2]
    )
    assert third.filter(pl.col("d") == 3)["sales"].item() == 4
    assert first_series
