"""Drift monitoring (pure): PSI per feature, prediction drift, realized accuracy, the report.

* :mod:`.drift` – PSI and prediction-drift measures, statuses;
* :mod:`.history` – the last history days of ``sales_long`` as a (series × day) matrix;
* :mod:`.archive` – the forecasts export and the archive of earlier forecasts;
* :mod:`.accuracy` – realized WRMSSE of an archived forecast once its actuals exist;
* :mod:`.report` – the drift report (``drift_report.json``) and its check.
"""

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
