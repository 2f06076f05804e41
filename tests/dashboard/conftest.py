"""Fixtures of the dashboard tests, on the data of :mod:`tests.dashboard.sample_home`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import ui
from tests.dashboard.sample_home import home_env, small_home


@pytest.fixture(scope="session")
def dash_home_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small materialized home (3 stores × 21 items, 400 days) with a tiny MLflow store."""
    return small_home(tmp_path_factory)


@pytest.fixture(scope="module")
def dash_home(dash_home_files: Path) -> Iterator[Path]:
    """The small home set as FORECASTING_HOME, with every chart spec validated."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in home_env(dash_home_files).items():
            mp.setenv(k, v)
        mp.setattr(ui, "VALIDATE", True)  # every chart spec is checked against the Vega-Lite schema
        yield dash_home_files


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A FORECASTING_HOME where nothing is materialized."""
    for k, v in home_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return tmp_path
