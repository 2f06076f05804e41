"""The pipeline's drift and accuracy figures as a Prometheus textfile (pure: no Dagster).

The drift asset writes ``<FORECASTING_HOME>/exports/pipeline_metrics.prom``
(:data:`~forecasting_assets.contracts.PIPELINE_METRICS_FILE`) from its report; node-exporter's
textfile collector serves it to Prometheus (``docker compose --profile monitoring``), whose
alert rules (``deploy/prometheus/alerts.yml``) fire on drift and on accuracy degradation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from forecasting_assets.contracts import PIPELINE_METRICS_FILE
from forecasting_assets.monitoring.drift import STATUSES

PREFIX = "forecasting_pipeline"
STATUS_VALUE = {status: float(i) for i, status in enumerate(STATUSES)}
"""ok = 0, warn = 1, alert = 2."""
SCOPES = {
    "overall": ("status",),
    "features": ("feature_drift", "status"),
    "predictions": ("prediction_drift", "status"),
    "realized_accuracy": ("realized_accuracy", "status"),
}
"""Where each scope's status sits in the drift report."""
REALIZED = {
    "realized_wrmsse": ("realized_wrmsse", "WRMSSE of an archived forecast on the actuals since."),
    "backtest_wrmsse": ("backtest_wrmsse", "Backtest WRMSSE of the model that made it."),
    "degradation": ("accuracy_degradation", "Realized / backtest WRMSSE - 1 (0.1 = 10 % worse)."),
    "threshold": ("accuracy_degradation_threshold", "Degradation above which it is an alert."),
    "days_with_actuals": ("realized_actuals_covered", "Forecast days that have actuals."),
}
"""Realized-accuracy figures of the report: key -> (metric name, help)."""


def _get(report: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _number(value: Any) -> float | None:
    """A finite number (numpy scalars included) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def pipeline_metrics(report: Mapping[str, Any]) -> CollectorRegistry:
    """The drift report's status, drift and realized-accuracy figures as Prometheus gauges.

    Figures the report does not have yet (no realized accuracy before actuals arrive, a
    feature without PSI) are left out rather than written as NaN.
    """
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, labels, registry=registry)

    status = gauge(
        "drift_status", "Drift report status by scope: 0 ok, 1 warn, 2 alert.", ("scope",)
    )
    for scope, path in SCOPES.items():
        value = _get(report, path)
        if value in STATUS_VALUE:
            status.labels(scope).set(STATUS_VALUE[value])

    generated = report.get("generated_at")
    if isinstance(generated, str):
        gauge("drift_report_timestamp_seconds", "When the drift report was computed.").set(
            datetime.fromisoformat(generated).timestamp()
        )
    alerts = _number(_get(report, ("feature_drift", "alert_features")))
    if alerts is not None:
        gauge("drift_alert_features", "Features whose PSI is above the alert threshold.").set(
            alerts
        )
    psi = gauge("feature_psi", "Population stability index of a feature.", ("feature",))
    for feature in report.get("features") or []:
        value = _number(feature.get("psi"))
        if value is not None:
            psi.labels(str(feature["name"])).set(value)
    for scope in ("vs_recent_actuals", "vs_previous_forecast"):
        value = _number(_get(report, ("prediction_drift", scope, "psi")))
        if value is not None:
            gauge(
                f"prediction_psi_{scope}", f"PSI of the forecasts {scope.replace('_', ' ')}."
            ).set(value)

    realized = report.get("realized_accuracy")
    if isinstance(realized, Mapping):
        labels = ("model_version",)
        version = str(realized.get("model_version") or "")
        for key, (name, doc) in REALIZED.items():
            value = _number(realized.get(key))
            if value is not None:
                gauge(name, doc, labels).labels(version).set(value)
    return registry


def write_pipeline_metrics(report: Mapping[str, Any], exports_dir: Path) -> Path:
    """Write :func:`pipeline_metrics` of ``report`` to ``exports_dir/pipeline_metrics.prom``
    atomically (temp file + rename); returns the path."""
    exports_dir.mkdir(parents=True, exist_ok=True)
    path = exports_dir / PIPELINE_METRICS_FILE
    write_to_textfile(str(path), pipeline_metrics(report))
    return path
