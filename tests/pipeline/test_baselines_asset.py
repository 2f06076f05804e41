"""The baselines asset called directly: the cheap baselines always, statsforecast's on request."""

from collections.abc import Callable

import dagster as dg
import pytest

from forecasting_assets.defs.assets.modeling import BaselinesConfig, baselines
from forecasting_assets.modeling.baselines import BASELINES

FOLDS = {"recent_folds": 2, "seasonal_lags": []}


@pytest.mark.slow  # statsforecast compiles its models on first use (about 10 s)
def test_statistical_baselines_are_scored_on_the_same_folds(small_sales_long: Callable) -> None:
    sales = small_sales_long(400).lazy()
    plain = baselines(dg.build_asset_context(), BaselinesConfig(**FOLDS), sales)
    assert set(plain["model"].unique()) == set(BASELINES)
    both = baselines(
        dg.build_asset_context(), BaselinesConfig(**FOLDS, statistical=["theta"]), sales
    )
    assert set(both["model"].unique()) == {*BASELINES, "theta"}
    theta = both.filter(both["model"] == "theta")
    assert sorted(theta["fold"].unique().to_list()) == [1, 2]
    assert theta.height == plain.filter(plain["model"] == "naive").height  # every fold x level
    assert (theta["wrmsse"] > 0).all()


def test_unknown_statistical_baseline_is_refused(small_sales_long: Callable) -> None:
    config = BaselinesConfig(**FOLDS, statistical=["arima"])
    with pytest.raises(dg.Failure, match="arima"):
        baselines(dg.build_asset_context(), config, small_sales_long(400).lazy())
