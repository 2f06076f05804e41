"""QuantileCalibration: per-series spread, calibration on unseen folds, all 12 levels, storage."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from forecasting_assets.contracts import M5_LEVELS
from forecasting_assets.modeling.metrics import M5_QUANTILES, WRMSSEEvaluator
from forecasting_assets.modeling.quantile_calibration import (
    QuantileCalibration,
    SeriesQuantiles,
    _inside_counts,
    calibration_from_dict,
    level_series,
)
from forecasting_assets.modeling.quantiles import LOWER_Q, QUANTILES, UPPER_Q, ConformalQuantiles

LO, HI = QUANTILES.index(LOWER_Q), QUANTILES.index(UPPER_Q)


def _fit(data: Any) -> QuantileCalibration:
    return QuantileCalibration.fit([data.mean] * len(data.folds), data.folds, data.hierarchy)


def test_intervals_follow_each_series_own_spread(count_folds: Any) -> None:
    cal = _fit(count_folds)
    q = cal.predict(count_folds.mean, count_folds.hierarchy["id"].to_list())  # (n, h, Q)
    width = (q[..., HI] - q[..., LO]).mean(axis=1) / np.sqrt(count_folds.mean.mean(axis=1))
    calm, wild = count_folds.dispersion == 1.0, count_folds.dispersion > 1.0
    # same levels on both halves, variance 6x: the over-dispersed series get wider intervals
    assert np.median(width[wild]) > 1.6 * np.median(width[calm])
    pooled = ConformalQuantiles.fit(count_folds.mean, count_folds.folds[0]).predict(
        count_folds.mean
    )
    pooled_width = (pooled[..., HI] - pooled[..., LO]).mean(axis=1) / np.sqrt(
        count_folds.mean.mean(axis=1)
    )
    assert np.median(pooled_width[wild]) < 1.3 * np.median(pooled_width[calm])


def test_coverage_on_a_fresh_fold_and_bracketing(count_folds: Any) -> None:
    cal = _fit(count_folds)
    ids = count_folds.hierarchy["id"].to_list()
    q = cal.predict(count_folds.mean, ids)
    rng = np.random.default_rng(11)
    covs = []
    for _ in range(3):
        fresh = count_folds.draw(rng)
        covs.append(np.mean((fresh >= q[..., LO]) & (fresh <= q[..., HI])))
    assert 0.76 <= np.mean(covs) <= 0.84
    assert (np.diff(q, axis=-1) >= -1e-12).all() and (q >= 0).all()
    assert (q[..., LO] <= count_folds.mean + 1e-12).all()
    assert (q[..., HI] >= count_folds.mean - 1e-12).all()
    # flat rows (the forecasts export) give the same values; unknown series get scale 1
    flat = cal.predict(count_folds.mean.ravel(), np.repeat(ids, count_folds.mean.shape[1]))
    np.testing.assert_allclose(flat, q.reshape(-1, len(QUANTILES)))
    unseen = cal.predict(np.array([2.0]), ["NEW_ITEM_CA_1"])
    assert unseen.shape == (1, len(QUANTILES)) and np.isfinite(unseen).all()


def test_every_level_is_calibrated_on_its_own_sums(count_folds: Any) -> None:
    cal = _fit(count_folds)
    assert set(cal.levels) == set(M5_LEVELS)
    out = cal.level_forecasts(count_folds.mean, count_folds.hierarchy)
    series = level_series(count_folds.hierarchy)
    rng = np.random.default_rng(5)
    fresh = count_folds.draw(rng)
    for name, q in out.items():
        _, ids = series[name]
        assert q.shape == (len(ids), 28, len(QUANTILES)), name
    total_q = out["total"][0]
    bottom = out["item_store"]
    # quantiles of a sum are far narrower than the sum of the series' quantiles
    assert (total_q[:, HI] - total_q[:, LO]).mean() < 0.5 * (
        bottom[..., HI].sum(axis=0) - bottom[..., LO].sum(axis=0)
    ).mean()
    store = out["store"]
    a = np.asarray(series["store"][0] @ fresh)
    assert 0.6 <= np.mean((a >= store[..., LO]) & (a <= store[..., HI])) <= 0.97


def test_wspl_of_calibrated_quantiles_beats_the_naive_spread(count_folds: Any) -> None:
    from forecasting_assets.modeling import baselines

    cal = _fit(count_folds)
    rng = np.random.default_rng(8)
    history = np.concatenate([count_folds.draw(rng) for _ in range(4)], axis=1)
    ev = WRMSSEEvaluator(history, count_folds.hierarchy, history[:, -28:].sum(axis=1))
    fresh = count_folds.draw(rng)
    idx = [QUANTILES.index(q) for q in M5_QUANTILES]
    model = {
        k: v[..., idx]
        for k, v in cal.level_forecasts(count_folds.mean, count_folds.hierarchy).items()
    }
    spread = baselines.quantiles_by_level(ev, history, baselines.naive_spread_quantiles, 28)
    ours, theirs = (
        ev.wspl_levels(fresh, model, M5_QUANTILES),
        ev.wspl_levels(fresh, spread, M5_QUANTILES),
    )
    assert set(ours) == {*M5_LEVELS, "all"}
    assert ours["all"] < theirs["all"]


def test_round_trip_and_legacy_readers(count_folds: Any) -> None:
    cal = _fit(count_folds)
    data = json.loads(json.dumps(cal.to_dict()))
    again = calibration_from_dict(data)
    assert isinstance(again, QuantileCalibration)
    ids = count_folds.hierarchy["id"].to_list()
    np.testing.assert_allclose(
        again.predict(count_folds.mean, ids), cal.predict(count_folds.mean, ids)
    )
    # the id-free part keeps the ConformalQuantiles layout (quantiles, edges, residuals)
    legacy = ConformalQuantiles.from_dict(data)
    assert legacy.predict(np.array([1.0])).shape == (1, len(QUANTILES))
    assert isinstance(calibration_from_dict(legacy.to_dict()), ConformalQuantiles)


def test_fit_rejects_mismatched_inputs(count_folds: Any) -> None:
    with pytest.raises(ValueError, match="do not match"):
        SeriesQuantiles.fit([count_folds.mean], [count_folds.folds[0][:5]], ["a"] * 200)
    with pytest.raises(ValueError, match="same number"):
        QuantileCalibration.fit([], [], count_folds.hierarchy)


def test_interval_counts_equal_the_clipped_bounds_they_stand_for() -> None:
    """The sorted-residual count of pairs inside ``[max(f + s lo, 0), max(f + s hi, 0)]`` equals
    the direct evaluation of those bounds, zero actuals and clipping included."""
    rng = np.random.default_rng(3)
    n_bins, k, n = 5, 21, 4000
    f = rng.gamma(0.7, 2.0, n)
    a = rng.poisson(f * rng.gamma(2.0, 0.5, n)).astype(np.float64)
    s = rng.uniform(0.2, 3.0, n)
    bins = rng.integers(0, n_bins, n)
    lo = -np.sort(rng.gamma(1.0, 1.0, (n_bins, k)), axis=1)  # <= 0, decreasing in k
    hi = np.sort(rng.gamma(1.0, 2.0, (n_bins, k)), axis=1)  # >= 0, increasing in k
    low = np.maximum(f[:, None] + s[:, None] * lo[bins], 0.0)
    high = np.maximum(f[:, None] + s[:, None] * hi[bins], 0.0)
    direct = ((a[:, None] >= low) & (a[:, None] <= high)).sum(axis=0)
    counted = _inside_counts(bins, (a - f) / s, a > 0, lo, hi)
    np.testing.assert_array_equal(counted, direct)
    assert 0 < direct.min() < direct.max() < n  # the candidates differ, so the test can fail
