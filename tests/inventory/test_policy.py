"""Inventory policy maths: demand classes, quantiles, shortage, EOQ, plans, overrides, curve."""

import math
import time

import numpy as np
import polars as pl
import pytest
from scipy import stats

from forecasting_assets.inventory import (
    Costs,
    classify_demand,
    cost_vs_service_curve,
    demand_quantile,
    demand_statistics,
    eoq,
    expected_shortage,
    fit_protection_dispersion,
    plan_inventory,
    resolve_parameters,
)


def _hist(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=float)


def test_demand_classes_by_hand() -> None:
    smooth = [5, 6, 5, 4, 5, 6] * 10  # every day, small variation
    erratic = [1, 20, 1, 20, 1, 20] * 10  # every day, CV² = (9.5/10.5)² ≈ 0.82
    intermittent = [4, 0, 0, 4, 0, 0] * 10  # ADI 3, CV² 0
    lumpy = [1, 0, 0, 30, 0, 0] * 10  # ADI 3, CV² ≈ 0.87
    none = [0] * 60
    h = _hist([smooth, erratic, intermittent, lumpy, none])
    s = demand_statistics(h)
    assert s["adi"][2] == pytest.approx(3.0)
    assert s["cv2"][2] == pytest.approx(0.0)
    assert s["cv2"][1] == pytest.approx((9.5 / 10.5) ** 2)
    assert s["mean_daily_demand"][3] == pytest.approx(31 / 6)
    assert list(classify_demand(s["adi"], s["cv2"])) == [
        "smooth", "erratic", "intermittent", "lumpy", "no_demand",
    ]  # fmt: skip


def test_classification_cutoffs_and_prelaunch_days() -> None:
    # Boundaries belong to the "irregular" side: ADI >= 1.32, CV² >= 0.49.
    got = classify_demand(np.array([1.31, 1.32, 1.31, 1.32]), np.array([0.48, 0.48, 0.49, 0.49]))
    assert list(got) == ["smooth", "intermittent", "erratic", "lumpy"]
    # NaN (pre-launch) days are not zero-demand days: ADI counts observed days only.
    h = _hist([[np.nan] * 30 + [3.0] * 30])
    s = demand_statistics(h)
    assert s["adi"][0] == pytest.approx(1.0)
    assert s["mean_daily_demand"][0] == pytest.approx(3.0)
    assert classify_demand(s["adi"], s["cv2"])[0] == "smooth"


def test_eoq_by_hand() -> None:
    # √(2·1000·50/2) = √50000
    assert eoq(np.array([1000.0]), 50.0, 2.0)[0] == pytest.approx(math.sqrt(50000))
    assert eoq(np.array([0.0]), 50.0, 2.0)[0] == 0.0
    dist = pl.DataFrame(
        {"id": ["a"], "mean_daily_demand": [2.0], "dispersion": [1.0], "unit_price": [4.0]}
    )
    plan = plan_inventory(dist, costs=Costs(ordering_cost=20.0, holding_cost_rate=0.25))
    # annual demand 730, holding 0.25 × 4 = 1 per unit-year → √(2·730·20/1)
    assert plan["eoq"][0] == pytest.approx(math.sqrt(2 * 730 * 20))


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(("mean", "disp"), [(0.3, 1.0), (4.0, 1.0), (4.0, 3.0), (50.0, 6.0)])
def test_demand_quantile_is_smallest_level_reaching_target(
    mean: float, disp: float, q: float
) -> None:
    s = demand_quantile(np.array([mean]), np.array([disp]), q)[0]
    if disp <= 1:
        cdf = stats.poisson(mean).cdf
    else:
        cdf = stats.nbinom(mean / (disp - 1), 1 / disp).cdf
        assert stats.nbinom(mean / (disp - 1), 1 / disp).var() == pytest.approx(mean * disp)
    assert cdf(s) >= q - 1e-12
    assert s == 0 or cdf(s - 1) < q


@pytest.mark.parametrize(("mean", "disp"), [(0.5, 1.0), (7.0, 1.0), (7.0, 2.5), (30.0, 8.0)])
def test_expected_shortage_closed_form_matches_sum(mean: float, disp: float) -> None:
    k = np.arange(0, 2000)
    dist = stats.poisson(mean) if disp <= 1 else stats.nbinom(mean / (disp - 1), 1 / disp)
    pmf = dist.pmf(k)
    for s in [0, 1, 3, int(mean), int(2 * mean) + 5]:
        brute = float(np.sum(np.maximum(k - s, 0) * pmf))
        got = expected_shortage(np.array([s]), np.array([mean]), np.array([disp]))[0]
        assert got == pytest.approx(brute, rel=1e-7, abs=1e-10)


def _distribution(n: int = 6, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": [f"I{i}_S{i % 2}" for i in range(n)],
            "store_id": [f"S{i % 2}" for i in range(n)],
            "dept_id": [f"D{i % 3}" for i in range(n)],
            "demand_class": ["smooth"] * n,
            "mean_daily_demand": rng.uniform(0.2, 10, n),
            "dispersion": rng.uniform(1.0, 4.0, n),
            "unit_price": rng.uniform(1, 10, n),
        }
    )


def test_plan_inventory_columns_and_identities() -> None:
    dist = _distribution()
    plan = plan_inventory(dist)
    for col in [
        "id", "store_id", "dept_id", "demand_class", "mean_daily_demand", "lead_time_days",
        "review_days", "service_level", "expected_demand_lt_review", "safety_stock",
        "reorder_point", "order_up_to", "eoq", "expected_holding_cost", "expected_stockout_cost",
        "unit_price",
    ]:  # fmt: skip
        assert col in plan.columns
    assert plan["service_level"].to_list() == [0.95] * dist.height
    assert (plan["expected_demand_lt_review"] - dist["mean_daily_demand"] * 14).abs().max() < 1e-9
    ss = plan["order_up_to"] - plan["expected_demand_lt_review"]
    assert (plan["safety_stock"] - ss).abs().max() < 1e-9
    assert (plan["order_up_to"] >= plan["reorder_point"]).all()
    higher = plan_inventory(dist, service_level=0.99)
    assert (higher["order_up_to"] >= plan["order_up_to"]).all()
    assert higher["expected_stockout_cost"].sum() < plan["expected_stockout_cost"].sum()
    assert higher["expected_holding_cost"].sum() > plan["expected_holding_cost"].sum()
    assert ((higher["expected_fill_rate"] >= 0) & (higher["expected_fill_rate"] <= 1)).all()


def test_plan_inventory_row_parameters_and_scalar_what_if() -> None:
    dist = _distribution().with_columns(
        pl.Series("lead_time_days", [1, 2, 3, 4, 5, 6]), pl.lit(0.9).alias("service_level")
    )
    plan = plan_inventory(dist)
    assert plan["lead_time_days"].to_list() == [1, 2, 3, 4, 5, 6]
    assert plan["service_level"].to_list() == [0.9] * 6
    what_if = plan_inventory(dist, service_level=0.99, lead_time_days=14)
    assert what_if["lead_time_days"].to_list() == [14] * 6
    assert what_if["service_level"].to_list() == [0.99] * 6
    with pytest.raises(ValueError, match="service_level"):
        plan_inventory(dist, service_level=1.0)


def test_resolve_parameters_precedence() -> None:
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "store_id": ["CA_1", "CA_1", "TX_2", "TX_2"],
            "dept_id": ["FOODS_1", "HOBBIES_1", "FOODS_1", "HOBBIES_1"],
        }
    )
    defaults = {
        "service_level": 0.95, "lead_time_days": 7, "review_days": 7, "ordering_cost": 20.0,
        "holding_cost_rate": 0.25, "stockout_cost_rate": 1.0,
    }  # fmt: skip
    out = resolve_parameters(
        frame,
        defaults,
        {
            "CA_1/FOODS_1": {"service_level": 0.99},
            "FOODS_1": {"service_level": 0.97, "lead_time_days": 3},
            "CA_1": {"service_level": 0.9, "review_days": 14},
        },
    )
    assert out["service_level"].to_list() == [0.99, 0.9, 0.97, 0.95]
    assert out["lead_time_days"].to_list() == [3, 7, 3, 7]
    assert out["review_days"].to_list() == [14, 14, 7, 7]
    with pytest.raises(ValueError, match="unknown override"):
        resolve_parameters(frame, defaults, {"CA_1": {"servicelevel": 0.9}})


def test_cost_vs_service_curve_is_monotone() -> None:
    curve = cost_vs_service_curve(_distribution(40, seed=3), (0.8, 0.9, 0.95, 0.99))
    assert curve["service_level"].to_list() == [0.8, 0.9, 0.95, 0.99]
    assert curve["expected_holding_cost"].is_sorted()
    assert curve["expected_stockout_cost"].is_sorted(descending=True)
    assert curve["expected_fill_rate"].is_sorted()
    assert curve["safety_stock_units"].is_sorted()


def test_dispersion_fit_recovers_poisson_and_overdispersion() -> None:
    rng = np.random.default_rng(1)
    pois = rng.poisson(5.0, size=(200, 500)).astype(float)
    disp, n_ok = fit_protection_dispersion(pois, 14)
    assert n_ok.min() > 40
    # A 28-day mean forecast adds its own error (×(1 + 14/28)) to the Poisson variance.
    assert np.median(disp) == pytest.approx(1.5, rel=0.15)
    r, mean = 1.0, 5.0  # NB daily demand, variance = mean + mean²/r = 30
    nb = rng.negative_binomial(r, r / (r + mean), size=(200, 500)).astype(float)
    disp_nb, _ = fit_protection_dispersion(nb, 14)
    assert np.median(disp_nb) == pytest.approx(6.0 * 1.5, rel=0.2)


def test_plan_is_fast_on_full_m5_size() -> None:
    n = 30_490
    rng = np.random.default_rng(0)
    dist = pl.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "mean_daily_demand": rng.gamma(0.7, 2.0, n),
            "dispersion": 1 + rng.gamma(1.0, 2.0, n),
            "unit_price": rng.uniform(0.5, 20, n),
        }
    )
    start = time.perf_counter()
    plan = plan_inventory(dist)
    elapsed = time.perf_counter() - start
    assert plan.height == n
    assert elapsed < 5.0, f"plan_inventory took {elapsed:.2f}s on {n} series"
