"""Drift measures: PSI, statuses, prediction drift and the realized-accuracy status."""

import math

import numpy as np
import polars as pl
import pytest

from forecasting_assets.monitoring import (
    feature_drift_status,
    prediction_drift,
    psi,
    psi_table,
    status_from_value,
    worst_status,
)
from forecasting_assets.monitoring.accuracy import accuracy_status, forecast_matrix, realized_wrmsse


def test_psi_hand_case() -> None:
    ref = np.array([0.0] * 50 + [1.0] * 50)
    cur = np.array([0.0] * 80 + [1.0] * 20)
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-9)
    assert psi(cur, ref) > 0  # not symmetric in general, but positive


def test_psi_identical_distributions_is_near_zero_and_shift_is_large() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50_000), rng.normal(size=50_000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, b) < 0.01
    assert psi(a, b + 1.0) > 0.25
    assert 0.02 < psi(a, b + 0.25) < 0.25


def test_psi_counts_missing_values_as_a_bin() -> None:
    ref = pl.Series([1.0, 2.0, 3.0, 4.0] * 25)
    cur = pl.Series([1.0, 2.0, None, None] * 25)
    assert psi(ref, cur) > 1.0
    assert math.isnan(psi(np.array([]), np.array([1.0])))


def test_status_thresholds() -> None:
    assert status_from_value(0.05, 0.1, 0.25) == "ok"
    assert status_from_value(0.1, 0.1, 0.25) == "ok"  # strictly above
    assert status_from_value(0.2, 0.1, 0.25) == "warn"
    assert status_from_value(0.3, 0.1, 0.25) == "alert"
    assert status_from_value(float("nan"), 0.1, 0.25) == "ok"
    assert worst_status("ok", "alert", "warn") == "alert"
    assert worst_status() == "ok"


def _table(statuses: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"name": [f"f{i}" for i in range(len(statuses))], "status": statuses})


def test_feature_drift_status_needs_enough_alerting_features() -> None:
    calm = ["ok"] * 40
    assert feature_drift_status(_table(calm)) == "ok"
    assert feature_drift_status(_table([*calm[:-1], "warn"])) == "warn"
    # one alerting feature of 40 (< 3 features and < 10 %) is a warning only
    assert feature_drift_status(_table([*calm[:-1], "alert"])) == "warn"
    assert feature_drift_status(_table(calm[:-3] + ["alert"] * 3)) == "alert"
    # a small table: one of five features is 20 % of them
    assert feature_drift_status(_table(["ok"] * 4 + ["alert"])) == "alert"
    assert feature_drift_status(_table([])) == "ok"


def test_psi_table_flags_the_shifted_feature() -> None:
    rng = np.random.default_rng(1)
    ref = pl.DataFrame({"a": rng.normal(size=5000), "b": rng.poisson(2, 5000)})
    cur = pl.DataFrame({"a": rng.normal(size=1000) + 2, "b": rng.poisson(2, 1000)})
    table = psi_table(ref, cur, ["a", "b"])
    status = dict(zip(table["name"], table["status"], strict=True))
    assert status == {"a": "alert", "b": "ok"}
    assert table.filter(pl.col("name") == "a")["current_mean"][0] > 1.5


def test_prediction_drift_against_reference() -> None:
    ids = [f"s{i}" for i in range(200)]
    rng = np.random.default_rng(2)
    level = rng.gamma(1.0, 3.0, 200)
    ref = pl.DataFrame({"id": np.repeat(ids, 7), "value": np.repeat(level, 7)})
    same = pl.DataFrame({"id": np.repeat(ids, 3), "predicted_sales": np.repeat(level, 3)})
    out = prediction_drift(same, ref)
    assert out["series"] == 200
    assert out["psi"] == pytest.approx(0.0, abs=1e-9)
    assert out["mean_change"] == pytest.approx(0.0, abs=1e-12)
    doubled = same.with_columns(pl.col("predicted_sales") * 2)
    out2 = prediction_drift(doubled, ref)
    assert out2["mean_change"] == pytest.approx(1.0)
    assert out2["psi"] > 0.25
    empty = prediction_drift(same.with_columns(pl.lit("x").alias("id")), ref)
    assert empty["series"] == 0 and empty["psi"] is None


def test_accuracy_status_thresholds() -> None:
    assert accuracy_status(1.12, 1.0) == ("alert", pytest.approx(0.12))
    assert accuracy_status(1.07, 1.0)[0] == "warn"
    assert accuracy_status(0.9, 1.0)[0] == "ok"
    assert accuracy_status(1.5, 1.0, alert=0.6, warn=0.55)[0] == "ok"
    assert accuracy_status(None, 1.0) == ("ok", None)
    assert accuracy_status(1.0, None) == ("ok", None)


def test_realized_wrmsse_perfect_and_worse() -> None:
    rng = np.random.default_rng(3)
    hierarchy = pl.DataFrame(
        {
            "id": [f"I{i}_S{s}" for s in (1, 2) for i in range(5)],
            "item_id": [f"I{i}" for _ in (1, 2) for i in range(5)],
            "dept_id": ["D"] * 10,
            "cat_id": ["C"] * 10,
            "store_id": [f"S{s}" for s in (1, 2) for _ in range(5)],
            "state_id": ["CA"] * 5 + ["TX"] * 5,
        }
    )
    history = rng.poisson(3.0, size=(10, 200)).astype(float)
    actual = rng.poisson(3.0, size=(10, 14)).astype(float)
    dollars = history[:, -28:].sum(axis=1)
    perfect = realized_wrmsse(history, hierarchy, dollars, actual, actual)
    assert perfect["wrmsse"] == pytest.approx(0.0)
    assert set(perfect["per_level"]) >= {"total", "item_store"}
    worse = realized_wrmsse(history, hierarchy, dollars, actual, actual * 3)
    assert worse["wrmsse"] > 0.5 and worse["seasonal_naive_wrmsse"] > 0


def test_forecast_matrix_aligns_ids_and_dates() -> None:
    import datetime as dt

    d0 = dt.date(2016, 5, 23)
    fc = pl.DataFrame(
        {
            "id": ["b", "a", "a"],
            "date": [d0, d0, d0 + dt.timedelta(days=1)],
            "predicted_sales": [1.0, 2.0, 3.0],
        }
    )
    m = forecast_matrix(fc, ["a", "b"], [d0, d0 + dt.timedelta(days=1)])
    assert m[0].tolist() == [2.0, 3.0]
    assert m[1, 0] == 1.0 and math.isnan(m[1, 1])
