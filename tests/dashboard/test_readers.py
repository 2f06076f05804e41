"""The dashboard's readers and helpers: report parsing, formats, statistics, pruned reads,
the what-if and MLflow."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from dashboard import data_profile, drift, exports, history, row_groups, tracking, ui, whatif
from forecasting_assets import contracts
from forecasting_assets.inventory import plan_inventory
from forecasting_assets.inventory.demand import demand_distribution


def test_drift_features_accepts_records_and_maps() -> None:
    records = {"features": [{"feature": "lag_28", "psi": 0.3}, {"feature": "wday", "psi": 0.01}]}
    out = drift.drift_features(records)
    assert out is not None and out.sort("feature")["psi"].to_list() == [0.3, 0.01]
    mapping = {"psi": {"lag_28": 0.3, "price": {"psi": 0.05, "drifted": False}}}
    out = drift.drift_features(mapping)
    assert out is not None and dict(out.iter_rows()) == {"lag_28": 0.3, "price": 0.05}
    assert drift.drift_features({"status": "ok"}) is None
    real = {
        "features": [
            {"name": "lag_28", "psi": 0.3, "status": "alert"},
            {"name": "const", "psi": None, "status": "ok"},
        ]
    }
    out = drift.drift_features(real)
    assert out is not None and out["feature"].to_list() == ["lag_28", "const"]


@pytest.mark.parametrize(
    ("report", "want"),
    [
        ({"status": "alert"}, "drift"),
        ({"status": "warn"}, "warn"),
        ({"status": "drift_detected"}, "drift"),
        ({"status": "retrain_recommended"}, "drift"),
        ({"status": "ok"}, "ok"),
        ({"status": {"status": "stable"}}, "ok"),
        ({"drift_detected": True}, "drift"),
        ({"drift_detected": False}, "ok"),
        ({}, "unknown"),
        (None, "unknown"),
    ],
)
def test_drift_status(report: dict | None, want: str) -> None:
    assert drift.drift_status(report) == want


def test_drift_thresholds() -> None:
    report = {"feature_drift": {"thresholds": {"warn": 0.05, "alert": 0.3}}}
    assert drift.drift_thresholds(report) == (0.05, 0.3)
    assert drift.drift_thresholds({}) == (0.1, 0.25)


def test_hierarchy_from_ids() -> None:
    df = pl.DataFrame({"item_id": ["FOODS_3_001", "HOBBIES_1_010"], "store_id": ["CA_1", "WI_3"]})
    out = exports.with_hierarchy(df)
    assert out["dept_id"].to_list() == ["FOODS_3", "HOBBIES_1"]
    assert out["cat_id"].to_list() == ["FOODS", "HOBBIES"]
    assert out["state_id"].to_list() == ["CA", "WI"]


def test_formats() -> None:
    assert ui.fmt_num(1_234_567) == "1.2M"
    assert ui.fmt_num(2_500) == "2.5k"
    assert ui.fmt_num(12) == "12"
    assert ui.fmt_num(None) == "–"
    assert ui.fmt_money(3_400_000) == "$3.4M"
    assert ui.pct_change(110, 100) == "+10.0% vs last 28 d"
    assert ui.pct_change(1, 0) is None
    assert ui.age(dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)) == "5 h ago"
    assert ui.age(None) == "unknown age"


def test_series_stats_classifies(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero share, ADI and CV² of hand-made series, straight from a tiny sales_long."""
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    days = 28
    start = dt.date(2016, 1, 1)
    dates = [start + dt.timedelta(days=i) for i in range(days + 28)]
    smooth = [5] * days  # every day, constant size
    lumpy = [0, 0, 0, 9] * (days // 4)  # one day in four, sizes vary below
    lumpy[3], lumpy[7] = 1, 30
    rows = []
    for item, sales in (("FOODS_1_001", smooth), ("FOODS_1_002", lumpy)):
        for i, d in enumerate(dates):
            rows.append(
                {
                    "item_id": item,
                    "store_id": "CA_1",
                    "date": d,
                    "sales": sales[i] if i < days else None,
                    "sell_price": 1.0,
                    "is_launched": True,
                }
            )
    frame = pl.DataFrame(rows).with_columns(
        pl.col("item_id").cast(pl.Enum(["FOODS_1_001", "FOODS_1_002"])),
        pl.col("store_id").cast(pl.Enum(["CA_1"])),
        pl.col("sales").cast(pl.Int32),
        pl.col("sell_price").cast(pl.Float32),
    )
    (tmp_path / "assets").mkdir()
    frame.write_parquet(tmp_path / "assets" / "sales_long.parquet")
    stats = data_profile.series_stats("CA_1")
    assert stats is not None
    by = {r["item_id"]: r for r in stats.iter_rows(named=True)}
    assert by["FOODS_1_001"]["zero_share"] == 0 and by["FOODS_1_001"]["demand_class"] == "smooth"
    assert by["FOODS_1_002"]["zero_share"] == pytest.approx(0.75)
    assert by["FOODS_1_002"]["adi"] == pytest.approx(4.0)
    nz = pl.Series([x for x in lumpy if x > 0], dtype=pl.Float64)
    # CV² of the non-zero sizes with the population variance, as forecasting_assets.inventory.demand
    assert by["FOODS_1_002"]["cv2"] == pytest.approx((nz.std(ddof=0) / nz.mean()) ** 2)
    assert by["FOODS_1_002"]["demand_class"] == "lumpy"
    assert (
        data_profile.series_stats("TX_9") is not None
        and data_profile.series_stats("TX_9").height == 0
    )


def test_flat_records_flattens_json() -> None:
    out = ui.flat_records(
        [
            {
                "name": "lag_7",
                "inputs": ["sales", "is_launched"],
                "stats": {"mean": 1.5, "null_share": 0.1},
            },
            {"name": "wday", "inputs": [], "stats": {"mean": 4.0}},
        ]
    )
    assert out.columns == ["name", "inputs", "stats.mean", "stats.null_share"]
    assert out["inputs"].to_list() == ["sales, is_launched", ""]
    assert out["stats.null_share"].to_list() == [0.1, None]


@pytest.mark.parametrize("partitioned", [False, True])
def test_row_group_pruned_reads_match_a_full_scan(
    tmp_path, monkeypatch: pytest.MonkeyPatch, partitioned: bool
) -> None:
    """Reads of one series / store / item through footer statistics return every matching row,
    also when row groups span items whose Enum order differs from their lexicographic order."""
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    items = ["HOBBIES_1_001", "HOBBIES_1_002", "HOUSEHOLD_2_001", "FOODS_1_001", "FOODS_3_090"]
    stores = ["CA_1", "TX_1", "WI_3"]
    start, days = dt.date(2016, 1, 1), 70
    rows = [
        {"store_id": s, "item_id": i, "date": start + dt.timedelta(days=d),
         "wm_yr_wk": 11600 + d // 7, "sales": (d * (k + 1)) % 4 if d < days - 28 else None,
         "sell_price": 1.0 + k + d // 7 / 10, "is_launched": d >= k}
        for s in stores for k, i in enumerate(items) for d in range(days)
    ]  # fmt: skip
    frame = pl.DataFrame(rows).with_columns(
        pl.col("item_id").cast(pl.Enum(items)),
        pl.col("store_id").cast(pl.Enum(stores)),
        pl.col("sales").cast(pl.Int32),
        pl.col("sell_price").cast(pl.Float32),
    )
    assets = tmp_path / "assets"
    if partitioned:
        (assets / "sales_long").mkdir(parents=True)
        for s in stores:
            part = frame.filter(pl.col("store_id") == s)
            part.write_parquet(assets / "sales_long" / f"{s}.parquet", row_group_size=45)
    else:
        assets.mkdir()
        frame.write_parquet(assets / "sales_long.parquet", row_group_size=45)
    sl = history.sales_long()
    assert sl is not None and row_groups.row_groups(*sl).height > 2 * len(stores)
    hist = frame.filter(pl.col("sales").is_not_null())
    for s in stores:
        for i in items:
            got = history.level_history("Item × store", None, 364, store_id=s, item_id=i)
            want = hist.filter(pl.col("store_id") == s, pl.col("item_id") == i)
            assert got is not None and got.equals(want.select("date", "sales"))
        stats = data_profile.series_stats(s)
        assert stats is not None and sorted(stats["item_id"]) == sorted(items)
    for i in items:
        prices = data_profile.price_history(i)
        assert prices is not None and prices.height == len(stores) * 10
        assert sorted(prices["store_id"].unique()) == stores
    assert data_profile.price_history("FOODS_9_999") is not None
    assert data_profile.price_history("FOODS_9_999").height == 0


def test_what_if_is_the_plan_function_on_the_store_history(dash_home) -> None:
    """The what-if's distribution is ``demand_distribution`` on the store's history matrix (built
    here independently from sales_long) and the forecasts, for lead time + review days."""
    store, lead = "TX_1", 3
    plan = pl.read_parquet(dash_home / "exports" / contracts.INVENTORY_PLAN_FILE)
    fc = pl.read_parquet(dash_home / "exports" / contracts.FORECASTS_FILE)
    sales = pl.read_parquet(dash_home / "assets" / contracts.SALES_LONG_FILE).filter(
        pl.col("store_id") == store, pl.col("sales").is_not_null()
    )
    last = sales["date"].max()
    days = pl.date_range(last - dt.timedelta(days=history.STORE_DAYS - 1), last, eager=True)
    wide = (
        sales.with_columns(pl.col("item_id").cast(pl.String))
        .with_columns(pl.when(pl.col("is_launched")).then(pl.col("sales")).alias("sales"))
        .pivot("date", index="item_id", values="sales")
    )
    series = plan.filter(pl.col("store_id") == store).select(
        "id", "item_id", "store_id", "dept_id", "review_days", "unit_price"
    )
    wide = series.select("item_id").join(wide, on="item_id", how="left", maintain_order="left")
    matrix = np.column_stack(
        [wide[str(d)].cast(pl.Float64).to_numpy() if str(d) in wide.columns
         else np.full(series.height, np.nan) for d in days]
    )  # fmt: skip
    dist = demand_distribution(series, matrix, fc, series["review_days"].cast(pl.Int64) + lead)
    want = plan_inventory(dist, service_level=0.9, lead_time_days=lead).sort("id")
    got = whatif.whatif_plan(store, None, 0.9, lead)
    assert got is not None and got.height == series.height
    got = got.sort("id")
    for col in ("mean_daily_demand", "dispersion", "safety_stock", "reorder_point", "order_up_to"):
        assert np.allclose(got[col].to_numpy(), want[col].to_numpy()), col
    # Computed from the history at the plan's own settings, the what-if reproduces the plan.
    dist = whatif._store_distribution(store, 7, "test")
    assert dist is not None
    at_plan = plan_inventory(dist, service_level=0.95, lead_time_days=7)
    planned, at_plan = plan.filter(pl.col("store_id") == store).sort("id"), at_plan.sort("id")
    assert at_plan["demand_class"].to_list() == planned["demand_class"].to_list()
    for col in ("mean_daily_demand", "dispersion", "safety_stock", "reorder_point", "order_up_to"):
        assert np.allclose(at_plan[col].to_numpy(), planned[col].to_numpy()), col
    shown = whatif.whatif_plan(store, None, 0.95, 7)  # from the plan's columns
    assert shown is not None
    assert np.allclose(
        shown.sort("id")["safety_stock"].to_numpy(), planned["safety_stock"].to_numpy()
    )
    one_dept = whatif.whatif_plan(store, "FOODS_3", 0.9, lead)
    assert one_dept is not None and set(one_dept["dept_id"]) == {"FOODS_3"}
    assert whatif.demand_for(store, "NO_DEPT", lead) is None


def test_mlflow_info_through_the_store(dash_home) -> None:
    """Runs, registered versions and the champion come from the MLflow store of the home."""
    info = tracking.mlflow_info()
    assert [r["run_name"] for r in info["runs"]] == ["train-2", "train-1"]
    assert info["runs"][0]["metrics"]["wrmsse"] == pytest.approx(0.66)
    assert [v["version"] for v in info["versions"]] == [2, 1]
    assert info["versions"][0]["aliases"] == [contracts.CHAMPION_ALIAS]
    assert info["versions"][1]["aliases"] == []
    assert info["versions"][0]["metrics"]["wrmsse"] == pytest.approx(0.66)
    champ = info["champion"]
    assert champ is not None and champ["version"] == 2
    assert champ["run_id"] == info["runs"][0]["run_id"] == info["versions"][0]["run_id"]
    assert info["runs"][0]["model_version"] == 2
    assert isinstance(champ["registered_at"], dt.datetime)


def test_mlflow_info_without_a_store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert tracking.mlflow_info() == {"runs": [], "versions": [], "champion": None}
    assert not (tmp_path / "mlflow.db").exists()
