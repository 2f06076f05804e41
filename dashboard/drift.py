"""Reading the drift report (``exports/drift_report.json``): PSI per feature, overall status and
thresholds, tolerant of the report's older shapes."""

from __future__ import annotations

from typing import Any

import polars as pl


def drift_features(report: dict[str, Any]) -> pl.DataFrame | None:
    """PSI per feature from a drift report, tolerant of a list of records or a {feature: psi} map."""
    for key in ("features", "feature_drift", "psi", "feature_psi", "columns"):
        val = report.get(key)
        if isinstance(val, list) and val and isinstance(val[0], dict):
            df = pl.DataFrame(val, infer_schema_length=None)
            name = next((c for c in ("feature", "name", "column") if c in df.columns), None)
            if name and "psi" in df.columns:
                return df.rename({name: "feature"}).with_columns(pl.col("psi").cast(pl.Float64))
        if isinstance(val, dict) and val:
            rows = []
            for feat, v in val.items():
                psi = v.get("psi") if isinstance(v, dict) else v
                if isinstance(psi, int | float):
                    rows.append({"feature": feat, "psi": float(psi)})
            if rows:
                return pl.DataFrame(rows)
    return None


def drift_status(report: dict[str, Any] | None) -> str:
    """'ok', 'warn', 'drift' (alert) or 'unknown' from the report's overall status."""
    if not report:
        return "unknown"
    raw = report.get("status", report.get("drift_status"))
    if isinstance(raw, dict):
        raw = raw.get("status", raw.get("level"))
    text = str(raw or "").lower()
    if text == "warn" or "warn" in text or "watch" in text:
        return "warn"
    if any(w in text for w in ("drift", "alert", "degrad", "fail", "retrain", "critical")):
        return "drift"
    if any(w in text for w in ("ok", "pass", "stable", "healthy", "none")):
        return "ok"
    if report.get("drift_detected") is True or report.get("retrain") is True:
        return "drift"
    if report.get("drift_detected") is False:
        return "ok"
    return "unknown"


def drift_thresholds(report: dict[str, Any]) -> tuple[float, float]:
    """(warn, alert) PSI thresholds of the feature drift (defaults 0.1 / 0.25)."""
    th = (report.get("feature_drift") or {}).get("thresholds") or report.get("thresholds") or {}
    warn = th.get("warn", th.get("psi_warn", 0.1)) if isinstance(th, dict) else 0.1
    alert = (
        th.get("alert", th.get("psi_alert", th.get("psi", 0.25))) if isinstance(th, dict) else 0.25
    )
    return float(warn), float(alert)
