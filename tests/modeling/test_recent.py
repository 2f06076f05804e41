"""Recent-sales features of the recursive model, checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting_assets.modeling.recent import (
    RECENT_COLUMNS,
    grid_position,
    origin_features,
    recent_features,
    sales_matrix,
    with_recent_features,
)

COL = {name: j for j, name in enumerate(RECENT_COLUMNS)}


def test_means_by_hand() -> None:
    y = np.arange(30, dtype=float)[None, :]  # day t sold t units
    f = recent_features(y, [29])[0, 0]
    assert f[COL["recent_mean_7"]] == pytest.approx(np.mean(np.arange(22, 29)))
    assert f[COL["recent_mean_14"]] == pytest.approx(np.mean(np.arange(15, 29)))
    assert f[COL["recent_mean_28"]] == pytest.approx(np.mean(np.arange(1, 29)))
    assert f[COL["recent_mean_7_lag_7"]] == pytest.approx(np.mean(np.arange(16, 23)))


def test_unknown_days_are_skipped_and_nothing_before_the_start_is_read() -> None:
    y = np.array([[np.nan, np.nan, 4.0, np.nan, 2.0, 0.0]])  # launched on day 2, day 3 unknown
    f = recent_features(y, [0, 3, 5, 6])[0]
    assert np.isnan(f[0]).all()  # nothing before column 0
    assert f[1, COL["recent_mean_7"]] == 4.0  # days 0..2, only day 2 known
    assert f[2, COL["recent_mean_28"]] == pytest.approx(3.0)  # mean of 4 and 2
    assert f[3, COL["recent_mean_7"]] == pytest.approx(2.0)  # mean of 4, 2 and 0
    assert np.isnan(f[3, COL["recent_mean_7_lag_7"]])  # would start before column 0


def test_frame_features_match_the_matrix_and_respect_launch() -> None:
    frame = pl.DataFrame(
        {
            "id": ["a"] * 4 + ["b"] * 4,
            "d": [1, 2, 3, 4] * 2,
            "sales": [5, 0, 3, None, 1, 2, 3, 4],
            "is_launched": [False, False, True, True, True, True, True, True],
        }
    )
    out = with_recent_features(frame)
    assert out.height == 8 and set(RECENT_COLUMNS) <= set(out.columns)
    # series a: days before launch are missing, not zeros (the 5 is ignored); day 4 unknown
    assert out["recent_mean_7"].to_list() == [None, None, None, 3.0, None, 1.0, 1.5, 2.0]
    with pytest.raises(ValueError, match="complete"):
        with_recent_features(frame.head(7))


def test_origin_features_are_the_recent_means_known_days_before() -> None:
    y = np.arange(60, dtype=float)[None, :].repeat(2, axis=0)
    y[1] *= 2
    series, days, ahead = np.array([0, 1, 1, 0]), np.array([40, 40, 59, 3]), np.array([1, 5, 28, 9])
    got = origin_features(y, series, days, ahead)
    assert got[0, COL["recent_mean_7"]] == pytest.approx(np.mean(np.arange(33, 40)))
    # Known at the origin d-5 (day column 35): the week ending the day before it was d-12..d-6.
    assert got[1, COL["recent_mean_7"]] == pytest.approx(2 * np.mean(np.arange(29, 36)))
    np.testing.assert_allclose(got[2], recent_features(y, [32])[1, 0])
    assert np.isnan(got[3]).all()  # the origin is before the first day: nothing known


def test_grid_position_reads_a_grid_in_any_row_order() -> None:
    grid = pl.DataFrame(
        {
            "id": np.repeat(["b", "a"], 5),
            "d": np.tile(np.arange(10, 15), 2),
            "sales": np.arange(10, dtype=float),
            "is_launched": [False, *[True] * 9],
        }
    ).sort("id", "d")
    series, day, y = grid_position(grid.sample(fraction=1.0, shuffle=True, seed=3))
    np.testing.assert_array_equal(y, sales_matrix(grid))
    shuffled = grid.sample(fraction=1.0, shuffle=True, seed=3)
    np.testing.assert_array_equal(
        y[series, day], np.where(shuffled["is_launched"], shuffled["sales"], np.nan)
    )
