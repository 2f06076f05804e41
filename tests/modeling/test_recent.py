"""Recent-sales features of the recursive model, checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting_assets.modeling.recent import (
    RECENT_COLUMNS,
    recent_features,
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
