"""Day-column rules of the sales file: the message names the column missing, out of order or
repeated, read from a real (generated) sales file."""

import shutil
from pathlib import Path

import pytest

from forecasting_assets.m5.readers import M5FileError, read_sales
from forecasting_assets.m5.validation import validate_sales

SALES = "sales_train_evaluation.csv"


@pytest.fixture
def sales_file(tiny_raw_source: Path, tmp_path: Path) -> Path:
    path = tmp_path / SALES
    shutil.copy(tiny_raw_source / SALES, path)
    return path


def rewrite_columns(path: Path, order: list[str]) -> None:
    """Rewrite the CSV with its columns in ``order`` (names may repeat or be left out)."""
    rows = [line.split(",") for line in path.read_text().splitlines()]
    index = {name: i for i, name in enumerate(rows[0])}
    path.write_text("\n".join(",".join(r[index[c]] for c in order) for r in rows) + "\n")


def failures(path: Path) -> str:
    return "\n".join(o.message for o in validate_sales(read_sales(path), path.name) if o.blocks)


def header(path: Path) -> list[str]:
    return path.read_text().split("\n", 1)[0].split(",")


def test_removed_day_column_is_named(sales_file: Path) -> None:
    rewrite_columns(sales_file, [c for c in header(sales_file) if c not in ("d_200", "d_201")])
    text = failures(sales_file)
    assert "column 'd_200, d_201' is missing" in text, text
    assert "d_1, d_2, … d_400" in text and "2 column(s) at fault" in text
    assert SALES in text


def test_out_of_order_day_column_is_named(sales_file: Path) -> None:
    columns = header(sales_file)
    i, j = columns.index("d_120"), columns.index("d_121")
    columns[i], columns[j] = columns[j], columns[i]
    rewrite_columns(sales_file, columns)
    text = failures(sales_file)
    assert "column 'd_120' is out of order" in text and "d_120 after d_121" in text, text
    assert "missing" not in text


def test_repeated_day_column_is_named_by_the_reader(sales_file: Path) -> None:
    columns = header(sales_file)
    rewrite_columns(sales_file, [*columns[:50], "d_7", *columns[50:]])
    with pytest.raises(M5FileError, match=r"column\(s\) d_7 appear more than once"):
        read_sales(sales_file)


def test_intact_day_columns_pass(sales_file: Path) -> None:
    assert failures(sales_file) == ""
