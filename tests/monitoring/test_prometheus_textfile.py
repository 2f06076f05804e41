"""The drift report as a Prometheus textfile: right values, atomic, and valid for promtool."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from forecasting_assets.contracts import PIPELINE_METRICS_FILE
from forecasting_assets.monitoring.prometheus import write_pipeline_metrics

REPORT = {
    "status": "alert",
    "generated_at": "2026-06-01T02:30:00+00:00",
    "feature_drift": {"status": "alert", "alert_features": 4, "warn_features": 1},
    "features": [
        {"name": "sales_lag_28", "psi": np.float64(0.31), "status": "alert"},
        {"name": "snap", "psi": float("nan"), "status": "ok"},
        {"name": "sell_price", "psi": 0.02, "status": "ok"},
        {"name": "event_type_1", "psi": None, "status": "ok"},
    ],
    "prediction_drift": {
        "available": True,
        "status": "warn",
        "vs_recent_actuals": {"psi": 0.12},
        "vs_previous_forecast": None,
    },
    "realized_accuracy": {
        "model_version": "7",
        "days_with_actuals": 28,
        "realized_wrmsse": 0.66,
        "backtest_wrmsse": 0.55,
        "degradation": 0.2,
        "threshold": 0.1,
        "status": "alert",
    },
}


def samples(path: Path) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_textfile_carries_status_drift_and_accuracy(tmp_path: Path) -> None:
    path = write_pipeline_metrics(REPORT, tmp_path / "exports")
    got = samples(path)
    status = {labels[0][1]: v for (n, labels), v in got.items() if n.endswith("drift_status")}
    assert status == {"overall": 2, "features": 2, "predictions": 1, "realized_accuracy": 2}
    assert got[("forecasting_pipeline_feature_psi", (("feature", "sales_lag_28"),))] == 0.31
    unscored = {"event_type_1", "snap"}  # no PSI (None, NaN): left out, not written as NaN
    assert not any(dict(labels).get("feature") in unscored for _, labels in got)
    version = (("model_version", "7"),)
    assert got[("forecasting_pipeline_accuracy_degradation", version)] == pytest.approx(0.2)
    assert got[("forecasting_pipeline_accuracy_degradation_threshold", version)] == 0.1
    assert got[("forecasting_pipeline_drift_alert_features", ())] == 4
    assert got[("forecasting_pipeline_prediction_psi_vs_recent_actuals", ())] == 0.12
    assert ("forecasting_pipeline_prediction_psi_vs_previous_forecast", ()) not in got
    assert got[("forecasting_pipeline_drift_report_timestamp_seconds", ())] == 1780281000.0


def test_textfile_before_any_actuals_has_no_accuracy(tmp_path: Path) -> None:
    path = write_pipeline_metrics({**REPORT, "status": "ok", "realized_accuracy": None}, tmp_path)
    names = {name for name, _ in samples(path)}
    assert "forecasting_pipeline_accuracy_degradation" not in names
    assert "forecasting_pipeline_drift_status" in names


def test_rewrite_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / PIPELINE_METRICS_FILE
    path.write_text("old\n")
    inode = path.stat().st_ino
    assert write_pipeline_metrics(REPORT, tmp_path) == path
    assert path.stat().st_ino != inode  # replaced by rename, never truncated in place
    assert [p.name for p in tmp_path.iterdir()] == [PIPELINE_METRICS_FILE]


def test_promtool_check_metrics_accepts_the_textfile(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    path = write_pipeline_metrics(REPORT, tmp_path)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=path.read_bytes(), capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
