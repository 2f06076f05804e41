"""The drift report: feature PSI, prediction drift and realized accuracy, with one status.

:func:`compute_drift_report` assembles ``exports/drift_report.json`` (archiving the current
forecasts on the way); :func:`check_drift_report` validates a written report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from forecasting_assets.contracts import MODEL_KEY, CheckOutcome
from forecasting_assets.features.columns import CALENDAR_FEATURES, EVENT_FEATURES, feature_columns
from forecasting_assets.monitoring.accuracy import realized_accuracy
from forecasting_assets.monitoring.archive import archive_forecasts, list_archives, read_forecasts
from forecasting_assets.monitoring.drift import (
    STATUSES,
    feature_drift_status,
    prediction_drift,
    psi_table,
    status_from_value,
    worst_status,
)
from forecasting_assets.monitoring.history import ID_COLS, id_in, last_history_date

NON_FEATURES = {*ID_COLS, "d", "date", "wm_yr_wk", "sales", "is_launched"}
REPORT_KEYS = {"status", "generated_at", "features", "prediction_drift", "realized_accuracy"}


class DriftParams(BaseModel):
    """Windows and thresholds of the drift report."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    recent_days: int = 28
    """Recent window: the last N history days."""
    reference_days: int = 364
    """Reference ("training") window: the N days before the recent window."""
    max_series: int = 2000
    """Series sampled (seeded) for the feature PSI."""
    psi_bins: int = 10
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    min_alert_features: int = 3
    """Feature drift is an alert when this many features are above ``psi_alert`` ..."""
    min_alert_share: float = 0.1
    """... or this share of the features is."""
    exclude_calendar_features: bool = True
    """Calendar/event features differ between windows by construction: leave them out."""
    exclude_features: list[str] = Field(default_factory=list)
    prediction_psi_warn: float = 0.1
    prediction_psi_alert: float = 0.25
    prediction_change_warn: float = 0.25
    prediction_change_alert: float = 0.5
    """|total forecast / total of the recent actuals − 1| above this → alert."""
    accuracy_warn: float = 0.05
    accuracy_alert: float = 0.10
    """Realized WRMSSE worse than the backtest by more than this share → alert."""
    backtest_model: str = MODEL_KEY
    min_actual_days: int = 7
    """An archived forecast is scored once at least this many of its days have actuals."""
    seed: int = 0


def drift_feature_columns(features: pl.LazyFrame, params: DriftParams) -> list[str]:
    """Numeric model inputs to watch (the feature catalog's list where the table has them)."""
    schema = features.collect_schema()
    numeric = [n for n, t in schema.items() if t.is_numeric() and n not in NON_FEATURES]
    excluded = set(params.exclude_features)
    if params.exclude_calendar_features:
        excluded |= {*CALENDAR_FEATURES, *EVENT_FEATURES}
    wanted = set(feature_columns(include_ids=False))
    numeric = [n for n in numeric if n in wanted] or numeric
    return [n for n in numeric if n not in excluded]


def feature_drift(
    features: pl.LazyFrame, last_d: int, params: DriftParams
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """PSI per feature: the recent window against the reference window (sampled series)."""
    columns = drift_feature_columns(features, params)
    id_type = features.collect_schema()["id"]
    if isinstance(id_type, pl.Enum):  # the categories are the series: no scan needed
        ids = sorted(id_type.categories.to_list())
    else:
        ids = (
            features.select(pl.col("id").unique()).collect()["id"].cast(pl.String).sort().to_list()
        )
    if len(ids) > params.max_series:
        rng = np.random.default_rng(params.seed)
        ids = sorted(rng.choice(ids, params.max_series, replace=False).tolist())
    recent_start = last_d - params.recent_days + 1
    ref_start = recent_start - params.reference_days
    frame = (
        features.filter(pl.col("d").is_between(ref_start, last_d) & id_in(id_type, ids))
        .select("d", *columns)
        .collect()
    )
    recent = frame.filter(pl.col("d") >= recent_start)
    reference = frame.filter(pl.col("d") < recent_start)
    table = psi_table(
        reference,
        recent,
        columns,
        bins=params.psi_bins,
        warn=params.psi_warn,
        alert=params.psi_alert,
    )
    window = {
        "series_sampled": len(ids),
        "reference_d": [ref_start, recent_start - 1],
        "recent_d": [recent_start, last_d],
        "reference_rows": reference.height,
        "recent_rows": recent.height,
    }
    return table.sort("psi", descending=True, nulls_last=True), window


def forecast_drift(
    sales_long: pl.LazyFrame, exports: Path, last_d: int, params: DriftParams
) -> dict[str, Any]:
    """Drift of the current forecasts against the recent actuals and the previous forecast."""
    forecasts = read_forecasts(exports)
    if forecasts is None:
        return {"available": False, "status": "ok"}
    previous = list_archives(exports)
    key = archive_forecasts(forecasts, exports, params.backtest_model)
    recent = (
        sales_long.filter(
            pl.col("d").is_between(last_d - params.recent_days + 1, last_d)
            & pl.col("sales").is_not_null()
        )
        .select("id", pl.col("sales").alias("value"))
        .collect()
    )
    vs_actuals = prediction_drift(forecasts, recent, bins=params.psi_bins)
    prev = [a for a in previous if a["key"] != key]
    vs_previous = None
    if prev:
        old = pl.read_parquet(prev[-1]["path"]).rename({"predicted_sales": "value"})
        vs_previous = {"archive": prev[-1]["key"], **prediction_drift(forecasts, old)}
    change = vs_actuals["mean_change"]
    status = worst_status(
        status_from_value(
            vs_actuals["psi"], params.prediction_psi_warn, params.prediction_psi_alert
        ),
        status_from_value(
            abs(change) if change is not None else None,
            params.prediction_change_warn,
            params.prediction_change_alert,
        ),
    )
    return {
        "available": True,
        "model_version": key.rsplit("_", 1)[0],
        "forecast_key": key,
        "vs_recent_actuals": vs_actuals,
        "vs_previous_forecast": vs_previous,
        "thresholds": {
            "psi_warn": params.prediction_psi_warn,
            "psi_alert": params.prediction_psi_alert,
            "change_warn": params.prediction_change_warn,
            "change_alert": params.prediction_change_alert,
        },
        "status": status,
    }


def compute_drift_report(
    sales_long: pl.LazyFrame, features: pl.LazyFrame, params: DriftParams, exports: Path
) -> dict[str, Any]:
    """Build the report (archiving the current forecasts on the way)."""
    last_d, last_date = last_history_date(sales_long)
    table, window = feature_drift(features, last_d, params)
    feat_status = feature_drift_status(
        table, min_alert_features=params.min_alert_features, min_alert_share=params.min_alert_share
    )
    prediction = forecast_drift(sales_long, exports, last_d, params)
    realized = realized_accuracy(
        sales_long,
        exports,
        last_date,
        backtest_model=params.backtest_model,
        min_actual_days=params.min_actual_days,
        warn=params.accuracy_warn,
        alert=params.accuracy_alert,
    )
    status = worst_status(
        feat_status, prediction["status"], realized["status"] if realized else "ok"
    )
    return {
        "status": status,
        "generated_at": datetime.now(UTC).isoformat(),
        "last_history_date": last_date,
        "feature_drift": {
            "status": feat_status,
            "alert_features": int((table["status"] == "alert").sum()),
            "warn_features": int((table["status"] == "warn").sum()),
            "thresholds": {
                "warn": params.psi_warn,
                "alert": params.psi_alert,
                "min_alert_features": params.min_alert_features,
                "min_alert_share": params.min_alert_share,
            },
            **window,
        },
        "features": table.to_dicts(),
        "prediction_drift": prediction,
        "realized_accuracy": realized,
    }


def top_features_markdown(report: dict[str, Any], n: int = 10) -> str:
    """The ``n`` features with the highest PSI as a Markdown table."""
    top = [f for f in report["features"] if f["psi"] is not None][:n]
    return "| feature | PSI | status |\n|---|---|---|\n" + "\n".join(
        f"| {f['name']} | {f['psi']:.3f} | {f['status']} |" for f in top
    )


def check_drift_report(path: Path) -> CheckOutcome:
    """The drift report's keys, status values, PSI >= 0 and an overall status no milder than
    its parts."""
    if not path.exists():
        return CheckOutcome(False, f"{path} does not exist")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return CheckOutcome(False, f"{path} is not valid JSON: {exc}")
    missing = REPORT_KEYS - set(report)
    if missing:
        return CheckOutcome(False, f"missing keys {sorted(missing)}")
    if report["status"] not in STATUSES:
        return CheckOutcome(False, f"status {report['status']!r} not in {STATUSES}")
    bad = [
        f.get("name")
        for f in report["features"]
        if not {"name", "psi", "status"} <= set(f)
        or f["status"] not in STATUSES
        or (f["psi"] is not None and not f["psi"] >= 0)
    ]
    if bad:
        return CheckOutcome(False, f"invalid feature rows: {bad[:10]}")
    parts = [
        (report.get("feature_drift") or {}).get("status", "ok"),
        (report["prediction_drift"] or {}).get("status", "ok"),
        (report["realized_accuracy"] or {}).get("status", "ok"),
    ]
    if any(p not in STATUSES for p in parts):
        return CheckOutcome(False, f"unknown component status in {parts}")
    if STATUSES.index(report["status"]) < STATUSES.index(worst_status(*parts)):
        return CheckOutcome(
            False, f"overall status {report['status']!r} is milder than its parts {parts}"
        )
    return CheckOutcome(True, f"status {report['status']}, {len(report['features'])} features")
