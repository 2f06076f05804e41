"""Streamlit AppTest of every dashboard page, on small materialized data and on an empty home."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import ui
from forecasting_assets import contracts

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = {
    "home": "views/home.py",
    "forecasting": "views/forecasting.py",
    "inventory": "views/inventory.py",
    "performance": "views/performance.py",
    "data": "views/data_quality.py",
}


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "home":
        at.switch_page(PAGES[page]).run()
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("vega_lite_chart"))


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return found[0]


def test_home_page(dash_home: Path) -> None:
    at = _open("home")
    _ok(at)
    assert at.title[0].value == "M5 demand forecasting"
    assert _metric(at, "Series") == "63"
    assert _metric(at, "Stores") == "3"
    assert _metric(at, "Horizon") == "28 days"
    assert _metric(at, "Last data day") == "2012-03-03"  # 2011-01-29 + 399 days
    assert _metric(at, "Champion model") == "v2"
    fc = pl.read_parquet(dash_home / "exports" / "forecasts.parquet")
    units = fc["predicted_sales"].sum()
    shown = _metric(at, "Forecast units, next 28 d")
    assert shown.endswith("k") and abs(float(shown[:-1]) * 1000 - units) <= 50
    bt = pl.read_parquet(dash_home / "exports" / "backtest_metrics.parquet")
    overall = bt.filter(pl.col("level") == "all")

    def mean_ratio(model: str) -> float:
        """``model``'s WRMSSE over seasonal naive's on each fold, averaged over the folds."""
        return float(
            overall.filter(pl.col("model") == model)
            .join(overall.filter(pl.col("model") == "seasonal_naive"), on="fold")
            .select(pl.col("wrmsse") / pl.col("wrmsse_right"))
            .to_series()
            .mean()  # type: ignore[arg-type]
        )

    assert (
        _metric(at, "Backtest WRMSSE ÷ seasonal naive") == f"{mean_ratio(contracts.MODEL_KEY):.3f}"
    )
    (delta,) = [m.delta for m in at.metric if m.label == "Backtest WRMSSE ÷ seasonal naive"]
    assert delta.endswith(f"over 3 folds · out of fold {mean_ratio(contracts.OUT_OF_FOLD_KEY):.3f}")
    assert _charts(at) == 2
    status = json.loads((dash_home / "exports" / "drift_report.json").read_text())["status"]
    if status == "alert":
        assert any("Drift detected" in e.value for e in at.error)
    else:
        assert any("Drift warning" in w.value for w in at.warning)
    assert at.dataframe, "alerts table missing"


def test_forecasting_page_levels_and_download(dash_home: Path) -> None:
    at = _open("forecasting")
    _ok(at)
    assert at.title[0].value == "Forecasting"
    assert _charts(at) == 1
    store = at.selectbox(key="fc_value").value
    agg = pl.read_parquet(dash_home / "exports" / "forecasts_aggregated.parquet")
    want = agg.filter(pl.col("level") == "store", pl.col("level_id") == store)[
        "predicted_sales"
    ].sum()
    assert _metric(at, "Forecast, next 28 d") == f"{want:.1f}"
    assert len(at.get("download_button")) == 1

    at.selectbox(key="fc_level").set_value("Item × store").run()
    _ok(at)
    at.selectbox(key="fc_store").set_value("TX_1").run()
    item = at.selectbox(key="fc_item").value
    fc = pl.read_parquet(dash_home / "exports" / "forecasts.parquet")
    series = fc.filter(pl.col("id") == f"{item}_TX_1")
    assert at.dataframe[0].value.shape[0] == 28
    assert (
        abs(at.dataframe[0].value["predicted_sales"].sum() - series["predicted_sales"].sum()) < 1e-6
    )
    assert "q500" in at.dataframe[0].value.columns  # the series table carries the quantiles
    sales = pl.read_parquet(dash_home / "assets" / "sales_long.parquet").filter(
        pl.col("item_id") == item, pl.col("store_id") == "TX_1", pl.col("sales").is_not_null()
    )
    last28 = sales.filter(pl.col("date") > sales["date"].max() - dt.timedelta(days=28))
    assert _metric(at, "Actual, last 28 d") == ui.fmt_num(float(last28["sales"].sum()))
    assert _charts(at) == 1

    for level in ("Total", "State", "Category", "Department"):
        at.selectbox(key="fc_level").set_value(level).run()
        _ok(at)
        assert _charts(at) == 1
    at.select_slider(key="fc_days").set_value(364).run()
    _ok(at)


def test_inventory_page_what_if(dash_home: Path) -> None:
    at = _open("inventory")
    _ok(at)
    assert at.title[0].value == "Inventory"
    assert _metric(at, "Series planned") == "63"
    assert _charts(at) == 3  # heatmap, demand classes, cost curve
    assert any(d.value.shape == (3, 5) for d in at.dataframe)  # the policy check table
    base = _metric(at, "Safety stock (units)")
    assert [m.delta for m in at.metric if m.label == "Reorder points (units)"] == ["same as plan"]
    at.slider(key="inv_sl").set_value(0.99).run()
    _ok(at)
    higher = [m for m in at.metric if m.label == "Safety stock (units)"][-1]
    assert higher.delta.startswith("+"), higher.delta
    at.slider(key="inv_lt").set_value(2).run()
    _ok(at)
    at.selectbox(key="inv_dept").set_value("FOODS_3").run()
    _ok(at)
    assert base


def test_performance_page(dash_home: Path) -> None:
    at = _open("performance")
    _ok(at)
    assert at.title[0].value == "Model performance"
    assert _charts(at) >= 6  # levels, folds, coverage, importance, drift, runs
    table = at.dataframe[0].value
    assert {contracts.MODEL_KEY, "seasonal_naive", "ratio_vs_snaive"} <= set(table.columns)
    at.selectbox(key="perf_fold").set_value("Mean over folds").run()
    _ok(at)
    at.radio(key="perf_imp").set_value("split").run()
    _ok(at)
    report = json.loads((dash_home / "exports" / "drift_report.json").read_text())
    assert _metric(at, "Feature drift") == report["feature_drift"]["status"]
    assert any("generated at" in x.value for x in [*at.error, *at.warning])
    runs = [d.value for d in at.dataframe if "run_name" in d.value.columns]
    assert runs and runs[0].shape[0] == 2
    assert runs[0]["champion"].sum() == 1


def test_data_page(dash_home: Path) -> None:
    at = _open("data")
    _ok(at)
    assert at.title[0].value == "Data"
    assert _metric(at, "Series") == "63"
    assert _metric(at, "Items") == "21"
    assert _metric(at, "History (days)") == "400"
    assert _metric(at, "Failed") == "1"
    assert any("prices_positive" in w.value for w in at.warning)
    assert _charts(at) == 4  # zero share, ADI/CV², classes, prices
    at.selectbox(key="data_store").set_value("WI_1").run()
    _ok(at)
    at.selectbox(key="data_item").set_value("HOBBIES_2_002").run()
    _ok(at)
    assert _charts(at) == 4


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_empty_state(empty_home: Path, page: str) -> None:
    at = _open(page)
    _ok(at)
    assert at.title, "page must still render its title"
    hints = [i.value for i in at.info] + [c.value for c in at.code]
    assert any("make demo" in h for h in hints), hints


def test_new_export_is_picked_up(dash_home: Path, tmp_path: Path) -> None:
    """Rewriting an export changes its version: the next run shows the new content."""
    at = _open("data")
    assert _metric(at, "Failed") == "1"
    path = dash_home / "exports" / "validation_report.json"
    original = path.read_text()
    report = json.loads(original)
    for check in report["checks"]:
        check["passed"] = True
    tmp = tmp_path / "report.json"
    tmp.write_text(json.dumps(report))
    try:
        os.replace(tmp, path)
        at.run()
        assert _metric(at, "Failed") == "0"
        assert any("All validation checks passed" in s.value for s in at.success)
    finally:
        path.write_text(original)
