"""The ``demand_model`` launchpad config carries every training setting."""

from __future__ import annotations

from dataclasses import fields

import pytest

from forecasting_assets.defs.assets.modeling import DemandModelConfig
from forecasting_assets.modeling.config import TrainingSettings


def test_every_training_setting_has_a_launchpad_field() -> None:
    own = {f.name for f in fields(TrainingSettings)} - {"params", "part_params"}
    assert own <= set(DemandModelConfig.model_fields)


def test_the_launchpad_defaults_are_the_settings_defaults() -> None:
    launchpad, settings = DemandModelConfig().to_settings(), TrainingSettings()
    for f in fields(TrainingSettings):
        if f.name != "params":  # the launchpad spells the LightGBM parameters out
            assert getattr(launchpad, f.name) == getattr(settings, f.name), f.name


def test_launchpad_values_reach_the_settings() -> None:
    settings = DemandModelConfig(
        seeds=3, seed=7, fold_reuse_days=28, learning_rate=0.05,
        recursive_tweedie_variance_power=None, extra_params_json='{"lambda_l2": 1.0}',
    ).to_settings()  # fmt: skip
    assert (settings.seeds, settings.seed, settings.fold_reuse_days) == (3, 7, 28)
    assert settings.params["learning_rate"] == 0.05 and settings.params["lambda_l2"] == 1.0
    assert settings.part_params == {}  # no power of its own: the recursive part uses the direct's


def test_part_params_reach_one_part_over_its_defaults() -> None:
    settings = DemandModelConfig(part_params_json='{"direct": {"lambda_l2": 10}}').to_settings()
    assert settings.part_params["direct"] == {"lambda_l2": 10}
    assert settings.part_params["recursive"] == {"tweedie_variance_power": 1.5}
    with pytest.raises(ValueError, match="'direkt'"):
        DemandModelConfig(part_params_json='{"direkt": {"lambda_l2": 10}}').to_settings()
