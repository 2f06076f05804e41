"""Simulation of the (R, S) policy, its backtest on fold forecasts and its validation export."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_assets.inventory import (
    FoldForecast,
    backtest_order_up_to,
    level_folds,
    review_demand,
    simulate_periodic_review,
)
from forecasting_assets.inventory.plan import InventoryParams
from forecasting_assets.inventory.validation import fold_forecasts, validate_policy

LEVELS = (0.90, 0.95, 0.99)
TOLERANCE = 0.03


def test_constant_demand_by_hand() -> None:
    demand = np.ones((1, 40))  # L + R = 5 days of demand = 5 units per cycle
    ok = simulate_periodic_review(demand, np.array([5.0]), lead_time_days=2, review_days=3)
    assert ok.cycles[0] == (40 - 2) // 3
    assert ok.stockout_cycles[0] == 0
    assert ok.fill_rate == 1.0
    short = simulate_periodic_review(demand, np.array([4.0]), lead_time_days=2, review_days=3)
    assert short.stockout_cycles[0] == short.cycles[0]  # every cycle ends one unit short
    # Each 3-day cycle: the last day's unit is not on the shelf → fill rate 2/3.
    assert short.fill_rate == pytest.approx(2 / 3)
    assert short.cycle_service_level == 0.0


def test_order_up_to_changes_between_reviews() -> None:
    demand = np.full((1, 21), 2.0)  # L=0, R=7: one cycle per week of 14 units
    res = simulate_periodic_review(demand, np.array([[14.0, 13.0, 14.0]]), 0, 7)
    assert res.cycles[0] == 3
    assert res.stockout_cycles[0] == 1  # only the week ordered up to 13


def _nb_demand(n: int, days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(1.0, 8.0, n)[:, None]
    size = rng.uniform(0.8, 5.0, n)[:, None]  # NB shape: variance = mean + mean²/size
    return rng.negative_binomial(size, size / (size + mean), size=(n, days)).astype(float)


def _assert_on_target(table: pl.DataFrame) -> None:
    overall = table.filter(pl.col("fold") == 0)
    assert overall.height == len(LEVELS)
    for row in overall.iter_rows(named=True):
        achieved = row["cycle_service_level"]
        assert abs(achieved - row["service_level"]) <= TOLERANCE, row
        assert 0.5 < row["fill_rate"] <= 1.0
        assert row["fill_rate"] >= achieved - 0.05  # fill rate ≥ CSL for these demand levels


def test_service_level_on_synthetic_negative_binomial_demand() -> None:
    sales = _nb_demand(600, 364 + 28 + 4 * 28, seed=11)
    table = backtest_order_up_to(sales, level_folds(sales, 4), LEVELS)
    _assert_on_target(table)


def test_backtest_detects_a_miscalibrated_distribution() -> None:
    # Strongly overdispersed demand planned as if it were Poisson must miss the target: the
    # check above can fail. Build that by fitting on a calm history and testing on a wild one.
    rng = np.random.default_rng(5)
    calm = rng.poisson(5.0, size=(400, 364 + 28)).astype(float)
    wild = rng.negative_binomial(0.5, 0.5 / 5.5, size=(400, 28 * 2)).astype(float)
    sales = np.hstack([calm, wild])
    table = backtest_order_up_to(sales, level_folds(sales, 2), LEVELS)
    overall = table.filter(pl.col("fold") == 0)
    misses = (overall["cycle_service_level"] - overall["service_level"]).abs() > TOLERANCE
    assert misses.all()


def test_each_review_covers_its_own_forecast_window() -> None:
    forecast = np.hstack([np.ones((1, 14)), np.full((1, 14), 3.0)])  # L + R = 14 days
    # Reviews on days 0, 7, 14 cover days [0, 14), [7, 21), [14, 28): 14, 28 and 42 units.
    assert review_demand(forecast, lead_time_days=7, review_days=7).tolist() == [[14, 28, 42]]


def test_backtest_follows_the_fold_forecasts() -> None:
    sales = _nb_demand(600, 364 + 28 + 4 * 28, seed=3)
    honest = level_folds(sales, 4)
    low = {k: FoldForecast(f.start, 0.5 * f.forecast) for k, f in honest.items()}
    target = 0.95
    on = backtest_order_up_to(sales, honest, (target,)).filter(pl.col("fold") == 0)
    under = backtest_order_up_to(sales, low, (target,)).filter(pl.col("fold") == 0)
    assert abs(on["cycle_service_level"][0] - target) <= TOLERANCE
    assert abs(on["fill_rate"][0] - on["expected_fill_rate"][0]) <= TOLERANCE
    assert under["cycle_service_level"][0] < target - 0.2
    assert under["fill_rate"][0] < on["fill_rate"][0]


def _backtest_frame(ids: list[str], folds: dict[int, int], values: np.ndarray) -> pl.DataFrame:
    """backtest_forecasts rows: fold k starts on day ``folds[k]``; forecast = values[series, k-1]."""
    return pl.concat(
        pl.DataFrame(
            {
                "id": np.repeat(ids, 28),
                "fold": np.full(28 * len(ids), k, np.int16),
                "d": np.tile(np.arange(start, start + 28, dtype=np.int16), len(ids)),
                "forecast": np.repeat(values[:, k - 1], 28).astype(np.float32),
                "actual": np.zeros(28 * len(ids), np.float32),
            }
        )
        for k, start in folds.items()
    )


def test_fold_forecasts_are_placed_by_series_and_day() -> None:
    backtest = _backtest_frame(["a", "b"], {1: 101, 2: 129}, np.array([[1.0, 2.0], [3.0, 4.0]]))
    folds = fold_forecasts(backtest, ["b", "c", "a"], first_d=51)
    assert sorted(folds) == [1, 2]
    assert folds[1].start == 50 and folds[2].start == 78
    assert folds[2].forecast.shape == (3, 28)
    assert folds[2].forecast[0].tolist() == [4.0] * 28  # "b"
    assert np.isnan(folds[2].forecast[1]).all()  # "c" has no backtest forecast
    assert folds[1].forecast[2].tolist() == [1.0] * 28  # "a"


def test_validation_summary_scores_the_model_folds() -> None:
    sales = _nb_demand(300, 364 + 28 + 14 + 3 * 28, seed=8)
    ids = [f"s{i:03d}" for i in range(len(sales))]
    first_d = 1001
    folds = level_folds(sales, 3)
    backtest = _backtest_frame(
        ids,
        {k: first_d + f.start for k, f in folds.items()},
        np.column_stack([f.forecast[:, 0] for f in folds.values()]),
    )
    _, summary = validate_policy(ids, sales, first_d, backtest, InventoryParams())
    assert "3 backtest folds" in summary["method"]
    assert {f["fold"] for f in summary["folds"]} == {1, 2, 3}
    for level in summary["levels"]:
        assert level["within_tolerance"], level
        assert level["cycles"] == len(ids) * 3 * 3  # 3 folds x 3 complete weekly cycles


def _real_sales(folder: Path, n: int, days: int) -> np.ndarray:
    cols = [f"d_{d}" for d in range(1942 - days, 1942)]
    wide = pl.read_csv(folder / "sales_train_evaluation.csv.gz", columns=["id", *cols])
    idx = np.random.default_rng(0).choice(wide.height, n, replace=False)
    full = wide[np.sort(idx)].select(cols).to_numpy().astype(float)
    first = np.where((full > 0).any(axis=1), (full > 0).argmax(axis=1), full.shape[1])
    full[np.arange(full.shape[1])[None, :] < first[:, None]] = np.nan  # leading zeros
    return full


def test_service_level_on_real_m5_series(real_m5: Path) -> None:
    sales = _real_sales(real_m5, 800, 364 + 28 + 6 * 28)
    table = backtest_order_up_to(sales, level_folds(sales, 6), LEVELS)
    _assert_on_target(table)
    assert table.filter(pl.col("fold") > 0)["fold"].n_unique() == 6
