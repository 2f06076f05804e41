"""batch_forecasts frames and checks: good frames pass, crafted bad frames fail."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from forecasting_assets.contracts import M5_LEVELS
from forecasting_assets.modeling import forecast as fc
from forecasting_assets.modeling.quantile_calibration import QuantileCalibration
from forecasting_assets.modeling.quantiles import QUANTILE_COLUMNS, QUANTILES, ConformalQuantiles


def _rows(n_series: int = 3, horizon: int = 28) -> pl.DataFrame:
    start = dt.date(2016, 5, 23)
    return pl.DataFrame(
        {
            "id": [f"FOODS_1_{i:03d}_CA_1" for i in range(n_series) for _ in range(horizon)],
            "item_id": [f"FOODS_1_{i:03d}" for i in range(n_series) for _ in range(horizon)],
            "dept_id": "FOODS_1",
            "cat_id": "FOODS",
            "store_id": "CA_1",
            "state_id": "CA",
            "date": [start + dt.timedelta(days=k) for _ in range(n_series) for k in range(horizon)],
        }
    )


@pytest.fixture
def good() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    point = rng.uniform(0, 5, 1000)
    cal = ConformalQuantiles.fit(point, rng.poisson(point).astype(float))
    rows = _rows()
    return fc.forecast_frame(rows, rng.uniform(0, 5, rows.height), cal, "7")


def test_good_forecasts_pass_every_check(good: pl.DataFrame) -> None:
    assert tuple(fc.export_frame(good).columns) == fc.FORECAST_COLUMNS
    assert all(c.passed for c in fc.hard_checks(good))
    assert (good["lower"] == good["q100"]).all() and (good["upper"] == good["q900"]).all()
    assert fc.check_totals_plausible(good, float(good["predicted_sales"].sum())).passed


def test_missing_or_duplicate_days_fail(good: pl.DataFrame) -> None:
    assert not fc.check_days_per_series(good.filter(pl.col("date") != dt.date(2016, 6, 1))).passed
    dup = pl.concat([good, good.head(1)])
    out = fc.check_days_per_series(dup)
    assert not out.passed and out.metadata["bad_series"] == 1
    assert not fc.check_days_per_series(good.head(0)).passed


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -0.5])
def test_non_finite_or_negative_values_fail(good: pl.DataFrame, bad_value: float) -> None:
    bad = good.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(bad_value).otherwise(pl.col("q995")).alias("q995")
    )
    out = fc.check_finite_non_negative(bad)
    assert not out.passed and out.metadata == {"q995": 1}


def test_interval_order_fails_when_point_outside(good: pl.DataFrame) -> None:
    bad = good.with_columns((pl.col("upper") + 1).alias("predicted_sales"))
    assert not fc.check_interval_order(bad).passed
    swapped = good.with_columns(pl.col("q050").alias("q025"), pl.col("q025").alias("q050"))
    moved = swapped.filter(pl.col("q025") != pl.col("q050")).height
    assert fc.check_interval_order(swapped).passed == (moved == 0)


def test_totals_flag_jumps_and_collapse(good: pl.DataFrame) -> None:
    total = float(good["predicted_sales"].sum())
    assert not fc.check_totals_plausible(good, total / 5).passed  # five-fold jump
    collapsed = good.with_columns(pl.lit(0.0).alias("predicted_sales"))
    assert not fc.check_totals_plausible(collapsed, total).passed
    assert not fc.check_totals_plausible(good, 0.0).passed


def test_aggregates_sum_series_legacy_calibration(good: pl.DataFrame) -> None:
    cal = ConformalQuantiles.fit(
        np.full(50, 10.0),
        np.linspace(8, 12, 50),
        level_pairs={"store": (np.full(50, 10.0), np.linspace(8, 12, 50))},
    )
    agg = fc.aggregate_forecasts(good, cal)
    assert set(agg["level"]) == set(M5_LEVELS)
    day = agg.filter(pl.col("level") == "store", pl.col("date") == dt.date(2016, 5, 23))
    assert day["predicted_sales"][0] == pytest.approx(
        good.filter(pl.col("date") == dt.date(2016, 5, 23))["predicted_sales"].sum()
    )
    assert (agg["lower"] <= agg["predicted_sales"]).all() and (
        agg["predicted_sales"] <= agg["upper"]
    ).all()
    assert len(QUANTILES) == 13


def test_aggregates_carry_all_quantiles_for_every_series_of_the_12_levels() -> None:
    rng = np.random.default_rng(1)
    rows = pl.concat(
        [_rows(4).with_columns(pl.lit(s).alias("store_id"), pl.lit(s[:2]).alias("state_id"),
                               pl.concat_str(pl.col("item_id"), pl.lit("_" + s)).alias("id"))
         for s in ("CA_1", "TX_1")]
    )  # fmt: skip
    hier = rows.unique("id", maintain_order=True).select(
        "id", "item_id", "dept_id", "cat_id", "store_id", "state_id"
    )
    mean = rng.uniform(0.5, 4.0, (hier.height, 28))
    cal = QuantileCalibration.fit([mean] * 3, [rng.poisson(mean).astype(float) for _ in range(3)],
                                  hier)  # fmt: skip
    series = fc.forecast_frame(rows, mean.ravel(), cal, "3")
    agg = fc.aggregate_forecasts(series, cal)
    assert tuple(agg.columns) == fc.AGGREGATED_COLUMNS
    expected = {"total": 1, "state": 2, "store": 2, "cat": 1, "dept": 1, "state_cat": 2,
                "state_dept": 2, "store_cat": 2, "store_dept": 2, "item": 4, "item_state": 8,
                "item_store": 8}  # fmt: skip
    counts = agg.group_by("level").agg(pl.col("level_id").n_unique()).rows()
    assert dict(counts) == expected
    assert agg.group_by("level", "level_id").len()["len"].unique().to_list() == [28]
    assert fc.check_finite_non_negative(agg).passed and fc.check_interval_order(agg).passed
    total = agg.filter(pl.col("level") == "total").sort("date")
    np.testing.assert_allclose(total["predicted_sales"].to_numpy(), mean.sum(axis=0))
    # the total's quantiles are its own, narrower than the sums of the series' quantiles
    summed = series.group_by("date").agg(pl.col("q100", "q900").sum()).sort("date")
    assert ((total["q900"] - total["q100"]) < (summed["q900"] - summed["q100"])).all()
    bottom = agg.filter(pl.col("level") == "item_store").sort("level_id", "date")
    mine = series.sort("id", "date")
    np.testing.assert_allclose(bottom["q995"].to_numpy(), mine["q995"].to_numpy())
    assert set(QUANTILE_COLUMNS) <= set(agg.columns)


def test_dagster_checks_fail_on_crafted_frames(good: pl.DataFrame) -> None:
    from forecasting_assets.defs.assets import modeling as assets

    export = fc.export_frame(good)
    assert assets.forecasts_complete(export).passed
    assert not assets.forecasts_complete(export.head(27)).passed
    neg = export.with_columns(pl.col("lower") - 100)
    assert not assets.forecasts_finite_non_negative(neg).passed
    assert not assets.forecasts_interval_order(export.with_columns(pl.col("lower") + 100)).passed
    history = pl.DataFrame({"d": list(range(1, 29)), "sales": [1] * 28}).lazy()
    jump = assets.forecasts_totals_plausible(
        export.with_columns(pl.col("predicted_sales") * 1000), history
    )
    assert not jump.passed
    assert not assets.demand_model_beats_seasonal_naive(
        {"wrmsse": 1.1, "wrmsse_seasonal_naive": 1.0, "wrmsse_ratio": 1.1, "wrmsse_ratio_max": 1.2}
    ).passed
    stats = {"n": 10.0, "n_non_finite": 1.0, "n_negative": 0.0, "min": 0.0, "max": 1.0, "mean": 0.5}
    assert not assets.demand_model_predictions_valid({"prediction_stats": stats}).passed
