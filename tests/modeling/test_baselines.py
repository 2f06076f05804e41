"""Baselines on tiny series with answers computed by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forecasting_assets.modeling import baselines as bl
from forecasting_assets.modeling.metrics import WRMSSEEvaluator


def test_naive_and_seasonal_naive() -> None:
    hist = np.array([np.arange(1, 15, dtype=float)])  # 1..14
    np.testing.assert_array_equal(bl.naive(hist, 3), [[14, 14, 14]])
    np.testing.assert_array_equal(bl.seasonal_naive(hist, 9), [[8, 9, 10, 11, 12, 13, 14, 8, 9]])


def test_moving_average_uses_last_28_days() -> None:
    hist = np.array([[100.0] * 10 + [1.0] * 14 + [3.0] * 14])
    np.testing.assert_allclose(bl.moving_average(hist, 2), [[2.0, 2.0]])


def test_ses_starts_at_first_sale() -> None:
    hist = np.array([[0.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    out = bl.ses(hist, 2, alpha=0.5)
    # level: 2 (init at first sale), then 0.5*4 + 0.5*2 = 3
    np.testing.assert_allclose(out, [[3.0, 3.0], [1.0, 1.0]])


def test_croston_sba_by_hand() -> None:
    hist = np.array([[0.0, 2.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    out = bl.croston_sba(hist, 2, alpha=0.5)
    # size 2 -> 2 + 0.5*(4-2) = 3; interval 1 -> 1 + 0.5*(2-1) = 1.5; SBA (1-0.25) * 3/1.5 = 1.5
    np.testing.assert_allclose(out, [[1.5, 1.5], [0.0, 0.0]])


def test_tsb_by_hand() -> None:
    hist = np.array([[0.0, 2.0, 0.0, 4.0]])
    out = bl.tsb(hist, 1, alpha=0.5, beta=0.5)
    # prob 1 -> 0.5 -> 0.75 ; size 2 -> 2 -> 3 ; forecast 2.25
    assert out[0, 0] == pytest.approx(2.25)


def test_all_baselines_shape_and_non_negative() -> None:
    rng = np.random.default_rng(0)
    hist = rng.poisson(0.7, (50, 90)).astype(float)
    hist[:10, :40] = 0.0
    for name, fn in bl.BASELINES.items():
        out = fn(hist, 28)
        assert out.shape == (50, 28), name
        assert np.isfinite(out).all() and (out >= 0).all(), name


def test_smoothing_baselines_are_row_wise_across_transpose_blocks() -> None:
    """Each series' forecast is its own: the day-major recursion, transposed in blocks, gives
    every row of a panel larger than one block what it gives that row alone; missing days
    count as no sale."""
    rng = np.random.default_rng(3)
    hist = rng.poisson(0.8, (2500, 60)).astype(float)
    hist[::7, :30] = 0.0
    gaps = hist.copy()
    gaps[5, 10] = np.nan
    for fn in (bl.ses, bl.croston_sba, bl.tsb):
        whole = fn(hist, 3)
        for row in (0, 1023, 1024, 2047, 2048, 2499):
            np.testing.assert_array_equal(whole[row], fn(hist[row : row + 1], 3)[0])
        filled = hist.copy()
        filled[5, 10] = 0.0
        np.testing.assert_array_equal(fn(gaps, 3), fn(filled, 3))


def test_naive_spread_quantiles_are_the_last_28_days() -> None:
    hist = np.array([[100.0] * 10 + list(range(28))])
    q = bl.naive_spread_quantiles(hist, 5, [0.0, 0.5, 1.0])
    assert q.shape == (1, 5, 3)
    np.testing.assert_allclose(q[0, 0], [0.0, 13.5, 27.0])
    np.testing.assert_allclose(q[0, 4], q[0, 0])  # flat over the horizon


def test_seasonal_naive_quantiles_add_in_sample_seasonal_errors() -> None:
    week = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    hist = np.tile(week, 8)[None, :]
    hist[0, -1] = 9.0  # one seasonal error of +2 (and nothing else changes)
    q = bl.seasonal_naive_quantiles(hist, 7, [0.0, 0.5, 1.0], window=28)
    np.testing.assert_allclose(q[0, :, 1], [1, 2, 3, 4, 5, 6, 9])  # the median error is 0
    np.testing.assert_allclose(q[0, :, 2] - q[0, :, 1], 2.0)  # the largest error is +2
    assert (q >= 0).all()


def test_level_quantile_references_read_only_the_days_they_need(count_folds: Any) -> None:
    """Aggregating only each reference's lookback gives what aggregating all history gives."""
    rng = np.random.default_rng(5)
    history = np.concatenate([count_folds.draw(rng) for _ in range(18)], axis=1)  # 504 days
    ev = WRMSSEEvaluator(history, count_folds.hierarchy, history[:, -28:].sum(axis=1))
    for method in bl.QUANTILE_LOOKBACK_DAYS:
        got = bl.quantiles_by_level(ev, history, method, 28)
        for name, lv in ev.levels.items():
            np.testing.assert_array_equal(got[name], method(lv.aggregate(history), 28))


def test_statsforecast_baselines_on_a_weekly_pattern() -> None:
    week = np.array([2.0, 4.0, 6.0, 8.0, 6.0, 4.0, 2.0])
    hist = np.vstack([np.tile(week, 30), np.r_[np.zeros(200), [1.0] * 10]])  # 2nd: 10 days
    for name, fn in bl.STATISTICAL_BASELINES.items():
        out = fn(hist, 14, n_jobs=1)
        assert out.shape == (2, 14) and (out >= 0).all(), name
        # a clean weekly pattern is continued
        np.testing.assert_allclose(out[0], np.tile(week, 2), atol=0.5, err_msg=name)
        # too short since the first sale: the moving average
        np.testing.assert_allclose(out[1], bl.moving_average(hist[1:], 14)[0], err_msg=name)


@pytest.mark.slow
def test_statsforecast_in_spawned_workers_equals_one_process() -> None:
    import polars as pl

    pl.DataFrame({"a": [1, 2, 2]}).group_by("a").len()  # polars' thread pool is up (fork-unsafe)
    rng = np.random.default_rng(4)
    hist = rng.poisson(2.0, (6, 120)).astype(float)
    np.testing.assert_allclose(bl.theta(hist, 7, n_jobs=2), bl.theta(hist, 7, n_jobs=1))
