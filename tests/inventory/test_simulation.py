"""Simulation of the (R, S) policy and its service-level accuracy on synthetic and real demand."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_assets.inventory import backtest_order_up_to, simulate_periodic_review

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
    table = backtest_order_up_to(sales, LEVELS, n_folds=4)
    _assert_on_target(table)


def test_backtest_detects_a_miscalibrated_distribution() -> None:
    # Strongly overdispersed demand planned as if it were Poisson must miss the target: the
    # check above can fail. Build that by fitting on a calm history and testing on a wild one.
    rng = np.random.default_rng(5)
    calm = rng.poisson(5.0, size=(400, 364 + 28)).astype(float)
    wild = rng.negative_binomial(0.5, 0.5 / 5.5, size=(400, 28 * 2)).astype(float)
    table = backtest_order_up_to(np.hstack([calm, wild]), LEVELS, n_folds=2)
    overall = table.filter(pl.col("fold") == 0)
    misses = (overall["cycle_service_level"] - overall["service_level"]).abs() > TOLERANCE
    assert misses.all()


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
    table = backtest_order_up_to(sales, LEVELS, n_folds=6)
    _assert_on_target(table)
    assert table.filter(pl.col("fold") > 0)["fold"].n_unique() == 6
