"""forecasting_assets.store: read-only access, None/empty before anything is materialized."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_assets import store
from tests.api import helpers as fx


@pytest.fixture()
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FORECASTING_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


def test_nothing_materialized_returns_none_and_creates_nothing(empty_home: Path) -> None:
    assert store.exports_dir() == empty_home / "exports"
    for fn in (
        store.load_forecasts,
        store.load_forecasts_aggregated,
        store.load_inventory_plan,
        store.load_backtest_metrics,
        store.load_interval_coverage,
        store.load_feature_importance,
        store.load_drift_report,
        store.load_feature_catalog,
        store.load_validation_report,
        store.champion_info,
        store.load_champion_model,
        store.champion_version,
    ):
        assert fn() is None, fn.__name__
    assert store.load_alerts() == []
    runs = store.list_training_runs()
    assert runs.height == 0 and "run_id" in runs.columns
    assert store.file_version(empty_home / "exports" / "forecasts.parquet") is None
    assert not empty_home.exists(), "readers must not create folders or an MLflow store"


def test_files_are_read(empty_home: Path) -> None:
    ex = empty_home / "exports"
    ex.mkdir(parents=True)
    pl.DataFrame({"feature": ["a"], "gain": [1.0], "split": [2]}).write_parquet(
        ex / "feature_importance.parquet"
    )
    (ex / "drift_report.json").write_text(json.dumps({"status": "ok"}))
    (ex / "alerts.jsonl").write_text('{"run_id": "r1"}\nnot json\n\n{"run_id": "r2"}\n')
    (empty_home / "assets").mkdir()
    (empty_home / "assets" / "feature_catalog.json").write_text(json.dumps([{"name": "lag_28"}]))
    assert store.load_feature_importance()["gain"].to_list() == [1.0]
    assert store.load_drift_report() == {"status": "ok"}
    assert [a["run_id"] for a in store.load_alerts()] == ["r1", "r2"]
    assert store.load_feature_catalog() == {"features": [{"name": "lag_28"}]}
    p = ex / "drift_report.json"
    v1 = store.file_version(p)
    p.write_text(json.dumps({"status": "drift", "more": 1}))
    os.utime(p, ns=(1, 10**18))
    assert store.file_version(p) not in (None, v1)


def test_champion_and_runs(api_home: fx.Home, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in api_home.env().items():
        monkeypatch.setenv(k, v)
    info = store.champion_info()
    assert info is not None and info["version"] == "1" and info["name"] == "m5_demand_model"
    assert info["params"]["feature_columns"] == list(fx.FEATURE_COLUMNS)
    assert info["metrics"]["wrmsse"] == pytest.approx(0.8)
    assert info["registered_at"] and info["run_id"]
    assert store.champion_version() == "1"
    model = store.load_champion_model()
    x = api_home.features.head(5).select(fx.FEATURE_COLUMNS).to_pandas()
    assert np.asarray(model.predict(x)).shape == (5,)
    assert store.champion_feature_columns(info, model) == list(fx.FEATURE_COLUMNS)
    runs = store.list_training_runs()
    assert runs.height >= 1 and runs["metrics.wrmsse"].dtype == pl.Float64
    assert runs["params.feature_columns"][0].startswith("[")
    imp = store.load_run_json_artifact(info["run_id"], "feature_importance.json")
    assert set(imp) == set(fx.FEATURE_COLUMNS)
    assert store.load_run_json_artifact(info["run_id"], "nope.json") is None
    assert store.load_forecasts().height == 16 * fx.HORIZON
