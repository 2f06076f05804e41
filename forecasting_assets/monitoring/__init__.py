"""Drift measures (pure): PSI per feature, prediction drift, realized accuracy and report status."""

from forecasting_assets.monitoring.drift import (
    STATUSES,
    feature_drift_status,
    prediction_drift,
    psi,
    psi_table,
    status_from_value,
    worst_status,
)

__all__ = [
    "STATUSES",
    "feature_drift_status",
    "prediction_drift",
    "psi",
    "psi_table",
    "status_from_value",
    "worst_status",
]
