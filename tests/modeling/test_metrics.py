"""Hand-computed cases for the M5 metrics (WRMSSE, RMSSE, scale guard, SPL, coverage)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from forecasting_assets.modeling import metrics


def _hier(items: list[str], stores: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": items,
            "dept_id": [i.rsplit("_", 1)[0] for i in items],
            "cat_id": [i.split("_")[0] for i in items],
            "store_id": stores,
            "state_id": [s.split("_")[0] for s in stores],
        }
    )


def test_scale_trims_leading_zeros() -> None:
    # A: trimmed history [1, 3, 2] -> diffs 2, -1 -> mean square 2.5 (the leading zeros are not used).
    assert metrics.raw_scale(np.array([[0.0, 0.0, 1.0, 3.0, 2.0]]))[0] == pytest.approx(2.5)
    assert metrics.raw_scale(np.array([[0.0, 0.0, 1.0, 3.0, 2.0]]), absolute=True)[
        0
    ] == pytest.approx(1.5)
    # Without trimming it would be (0 + 1 + 4 + 1) / 4 = 1.5.
    assert metrics.raw_scale(np.array([[1.0, 2.0, 1.0, 2.0, 1.0]]))[0] == pytest.approx(1.0)


def test_zero_and_undefined_scale_are_guarded() -> None:
    hist = np.array(
        [
            [0.0, 0.0, 5.0, 5.0, 5.0],  # constant after launch: scale 0 -> mean y^2 = 25
            [0.0, 0.0, 0.0, 0.0, 3.0],  # single sale on the last day: undefined -> 9
            [0.0, 0.0, 0.0, 0.0, 0.0],  # never sold -> 1.0
        ]
    )
    raw = metrics.raw_scale(hist)
    assert raw[0] == 0.0 and math.isnan(raw[1]) and math.isnan(raw[2])
    np.testing.assert_allclose(metrics.guarded_scale(hist), [25.0, 9.0, 1.0])
    # RMSSE of the constant series: errors of 1 unit -> sqrt(1 / 25).
    r = metrics.rmsse(
        np.array([[5.0, 5.0]]), np.array([[4.0, 6.0]]), metrics.guarded_scale(hist[:1])
    )
    assert r[0] == pytest.approx(0.2)


def test_zero_scale_series_keeps_its_weight() -> None:
    hist = np.array([[0.0, 0.0, 5.0, 5.0, 5.0], [1.0, 2.0, 1.0, 2.0, 1.0]])
    ev = metrics.WRMSSEEvaluator(
        hist, _hier(["FOODS_1_001", "FOODS_1_002"], ["CA_1", "CA_1"]), np.array([10.0, 30.0]),
        levels={"item_store": ("item_id", "store_id")},
    )  # fmt: skip
    np.testing.assert_allclose(ev.levels["item_store"].weight, [0.25, 0.75])
    score = ev.score(np.array([[5.0, 5.0], [1.0, 1.0]]), np.array([[4.0, 6.0], [1.0, 1.0]]))
    assert score["item_store"] == pytest.approx(0.25 * 0.2)


def test_tiny_hierarchy_by_hand() -> None:
    hist = np.array([[0.0, 0.0, 1.0, 3.0, 2.0], [1.0, 2.0, 1.0, 2.0, 1.0]])
    actual = np.array([[2.0, 2.0], [1.0, 1.0]])
    forecast = np.array([[1.0, 3.0], [1.0, 1.0]])
    ev = metrics.WRMSSEEvaluator(
        hist, _hier(["FOODS_1_001", "FOODS_1_002"], ["CA_1", "CA_1"]), np.array([30.0, 10.0]),
        levels={"total": (), "item_store": ("item_id", "store_id")},
    )  # fmt: skip
    per = ev.level_rmsse(actual, forecast)
    np.testing.assert_allclose(per["item_store"], [math.sqrt(1 / 2.5), 0.0])
    # Total: history [1, 2, 2, 5, 3] -> diffs 1, 0, 3, -2 -> scale 3.5; errors -1, +1 -> mse 1.
    np.testing.assert_allclose(per["total"], [math.sqrt(1 / 3.5)])
    score = ev.score(actual, forecast)
    assert score["item_store"] == pytest.approx(0.75 * math.sqrt(1 / 2.5))
    assert score["total"] == pytest.approx(math.sqrt(1 / 3.5))
    assert score["all"] == pytest.approx((0.75 * math.sqrt(1 / 2.5) + math.sqrt(1 / 3.5)) / 2)


def test_single_series_all_levels_equal_its_rmsse() -> None:
    hist = np.array([[0.0, 2.0, 4.0, 1.0, 3.0, 0.0, 2.0]])
    actual, forecast = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 2.0, 1.0]])
    ev = metrics.WRMSSEEvaluator(hist, _hier(["FOODS_1_001"], ["CA_1"]), np.array([5.0]))
    expected = metrics.rmsse(actual, forecast, metrics.guarded_scale(hist))[0]
    score = ev.score(actual, forecast)
    assert set(score) == {*metrics.M5_LEVELS, "all"}
    for value in score.values():
        assert value == pytest.approx(expected)


def test_vectorised_levels_match_a_loop_reference() -> None:
    rng = np.random.default_rng(3)
    items = [f"{c}_{d}_{i:03d}" for c in ("FOODS", "HOBBIES") for d in (1, 2) for i in range(3)]
    stores = ["CA_1", "CA_2", "TX_1"]
    pairs = [(i, s) for i in items for s in stores]
    hier = _hier([p[0] for p in pairs], [p[1] for p in pairs])
    n = len(pairs)
    hist = rng.poisson(2.0, (n, 60)).astype(float)
    hist[:5, :20] = 0.0  # leading zeros on some series
    actual, forecast = rng.poisson(2.0, (n, 28)).astype(float), rng.uniform(0, 4, (n, 28))
    dollars = rng.uniform(0, 100, n)
    ev = metrics.WRMSSEEvaluator(hist, hier, dollars)
    score = ev.score(actual, forecast)
    frame = hier.with_columns(pl.Series("_i", range(n)))
    for level, cols in metrics.M5_LEVELS.items():
        groups = frame.group_by(list(cols) or pl.lit(1), maintain_order=True).agg(pl.col("_i"))
        total = 0.0
        for idx in groups["_i"].to_list():
            h, a, f = hist[idx].sum(0), actual[idx].sum(0), forecast[idx].sum(0)
            start = int(np.argmax(h != 0))
            scale = np.mean(np.diff(h[start:]) ** 2)
            total += dollars[idx].sum() / dollars.sum() * math.sqrt(np.mean((a - f) ** 2) / scale)
        assert score[level] == pytest.approx(total, rel=1e-9), level
    assert score["all"] == pytest.approx(np.mean([score[lv] for lv in metrics.M5_LEVELS]))


def test_point_metrics() -> None:
    a, f = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, 2.0], [1.0, 4.0]])
    assert metrics.mae(a, f) == pytest.approx(0.75)
    assert metrics.rmse(a, f) == pytest.approx(math.sqrt(5 / 4))
    assert metrics.bias(a, f) == pytest.approx(-0.25)


def test_pinball_spl_and_coverage_by_hand() -> None:
    actual = np.array([[2.0, 0.0]])
    qf = np.array([[[1.0, 3.0], [1.0, 3.0]]])  # quantiles 0.1 and 0.9, two days
    loss = metrics.pinball_loss(actual, qf, [0.1, 0.9])
    # q0.1=1: day1 y=2 -> 0.1*1 = 0.1; day2 y=0 -> 0.9*1 = 0.9 -> mean 0.5
    # q0.9=3: day1 -> 0.1*1 = 0.1; day2 -> 0.1*3 = 0.3 -> mean 0.2
    np.testing.assert_allclose(loss, [[0.5, 0.2]])
    hist = np.array([[0.0, 1.0, 3.0, 2.0]])  # |diffs| after launch: 2, 1 -> 1.5
    ev = metrics.WRMSSEEvaluator(hist, _hier(["FOODS_1_001"], ["CA_1"]), np.array([1.0]),
                                 levels={"item_store": ("item_id", "store_id")})  # fmt: skip
    np.testing.assert_allclose(
        ev.spl("item_store", actual, qf, [0.1, 0.9]), [[0.5 / 1.5, 0.2 / 1.5]]
    )
    assert ev.wspl(actual, {"item_store": qf}, [0.1, 0.9]) == pytest.approx(0.35 / 1.5)
    np.testing.assert_allclose(metrics.quantile_coverage(actual, qf), [0.5, 1.0])
    assert metrics.interval_coverage(actual, qf[..., 0], qf[..., 1]) == pytest.approx(0.5)


def test_weights_uniform_without_sales_and_codes_in_order() -> None:
    hier = _hier(["FOODS_1_002", "FOODS_1_001", "FOODS_1_002"], ["CA_1", "CA_1", "TX_1"])
    codes, keys = metrics.level_codes(hier, ("item_id",))
    assert codes.tolist() == [0, 1, 0]
    assert keys["level_id"].to_list() == ["FOODS_1_002", "FOODS_1_001"]
    np.testing.assert_allclose(metrics.dollar_weights(np.zeros(3), codes, 2), [0.5, 0.5])
    np.testing.assert_allclose(
        metrics.dollar_weights(np.array([1.0, np.nan, 3.0]), codes, 2), [1.0, 0.0]
    )


def test_wspl_levels_is_the_mean_of_the_levels() -> None:
    hier = _hier(["FOODS_1_001", "FOODS_1_002"], ["CA_1", "CA_1"])
    hist = np.array([[0.0, 1.0, 3.0, 2.0], [1.0, 2.0, 1.0, 2.0]])
    ev = metrics.WRMSSEEvaluator(hist, hier, np.array([1.0, 3.0]))
    actual = np.array([[2.0, 0.0], [1.0, 1.0]])
    qs = metrics.M5_QUANTILES
    q = {name: np.repeat(lv.aggregate(actual)[..., None], len(qs), axis=2)
         for name, lv in ev.levels.items()}  # fmt: skip
    perfect = ev.wspl_levels(actual, q, qs)
    assert set(perfect) == {*metrics.M5_LEVELS, "all"} and perfect["all"] == 0.0
    shifted = {k: v + 1.0 for k, v in q.items()}
    per = ev.wspl_levels(actual, shifted, qs)
    assert per["all"] == pytest.approx(np.mean([per[k] for k in metrics.M5_LEVELS]))
    # total: y = [3, 1], |diffs| of [1, 3, 4, 4] -> scale 1; every quantile is 1 too high:
    # pinball (1 - tau) * 1, averaged over the nine (symmetric) levels -> 0.5
    assert per["total"] == pytest.approx(0.5)
    assert per["all"] == pytest.approx(ev.wspl(actual, shifted, qs))
    assert len(qs) == 9 and qs[4] == 0.5
