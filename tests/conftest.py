"""Shared fixtures: small generated M5 data and an isolated FORECASTING_HOME per test."""

import shutil
from pathlib import Path

import pytest

from forecasting_assets.m5.generator import generate_m5

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_M5 = REPO_ROOT.parent / "shared" / "m5"

TINY_SIZE = {"n_stores": 2, "items_per_dept": 3, "n_days": 400, "seed": 7}
"""42 series × 400 days: big enough for every rule, small enough for ~1 s per pipeline run."""


@pytest.fixture(scope="session")
def tiny_raw_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated M5-shaped files, made once per session; copy before modifying."""
    folder = tmp_path_factory.mktemp("tiny_raw")
    generate_m5(folder, **TINY_SIZE)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FORECASTING_HOME (with its own MLflow store) for one test."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("FORECASTING_HOME", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


@pytest.fixture
def raw_dir(home: Path, tiny_raw_source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, writable copy of the tiny raw files, set as M5_RAW_DIR."""
    folder = home / "raw"
    shutil.copytree(tiny_raw_source, folder)
    monkeypatch.setenv("M5_RAW_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def real_m5() -> Path:
    """The genuine M5 subset shipped beside the repo (../shared/m5)."""
    if not (REAL_M5 / "calendar.csv").exists():
        pytest.skip(f"real M5 subset not found at {REAL_M5}")
    return REAL_M5
