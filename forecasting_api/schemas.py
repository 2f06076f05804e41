"""Request and response bodies (Pydantic v2, strict: no silent type coercion)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_\-]+$"),
]


class PredictionRequest(BaseModel):
    """One item × store × day to forecast."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-23"},
                {"item_id": "FOODS_1_001_CA_1", "date": "2016-05-23"},
            ]
        },
    )

    item_id: Identifier = Field(
        description="M5 item id (FOODS_1_001), or the series id that already ends with the "
        "store (FOODS_1_001_CA_1)."
    )
    store_id: Identifier | None = Field(
        default=None, description="Store (CA_1); optional when item_id ends with it."
    )
    date: dt.date = Field(description="Day to forecast, ISO format YYYY-MM-DD.")

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> dt.date:
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise ValueError("date must be an ISO date string 'YYYY-MM-DD'")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"invalid calendar date '{value}'") from exc


class BatchPredictionRequest(BaseModel):
    """Several predictions at once.

    At most ``FORECASTING_API_MAX_BATCH`` items (default 10,000): the app puts the setting in
    the OpenAPI ``maxItems`` and answers 413 above it.
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-23"},
                        {"item_id": "FOODS_1_001_CA_1", "date": "2016-05-24"},
                    ]
                }
            ]
        },
    )

    items: list[PredictionRequest] = Field(min_length=1)


class PredictionInterval(BaseModel):
    """80 % prediction interval (the q10 and q90 quantiles)."""

    lower: float
    upper: float


class PredictionResponse(BaseModel):
    """One answer."""

    item_id: str = Field(description="Item id without the store (FOODS_1_001).")
    store_id: str
    date: dt.date
    predicted_sales: float = Field(ge=0, description="Expected units sold that day.")
    prediction_interval: PredictionInterval
    model_version: str = Field(description="Version of the model that made the number.")
    source: Literal["batch_forecast", "model"] = Field(
        description="batch_forecast: from the materialized 28-day forecasts; model: computed "
        "now by the champion from the stored features (dates outside the forecasts)."
    )
    timestamp: dt.datetime = Field(description="When the answer was made (UTC, ISO 8601).")


class ErrorItem(BaseModel):
    """One validation problem."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a human-readable message (+ field errors for 422 validation)."""

    detail: str
    errors: list[ErrorItem] | None = None


class Links(BaseModel):
    docs: str
    openapi: str
    health: str
    info: str
    model_info: str
    feature_importance: str
    predict: str
    predict_batch: str
    metrics: str


class RootResponse(BaseModel):
    name: str
    version: str
    description: str
    links: Links


class ComponentHealth(BaseModel):
    """State of one served component."""

    loaded: bool
    version: str | None = None
    loaded_at: dt.datetime | None = None
    age_seconds: float | None = Field(
        default=None, description="Seconds since the source file / model was written."
    )
    detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    live: bool
    ready: bool = Field(description="Forecasts and the champion model are both loaded.")
    uptime_seconds: float
    model: ComponentHealth
    forecasts: ComponentHealth
    features: ComponentHealth
    registry: ComponentHealth
    last_reload_check: dt.datetime | None
    reload_interval_seconds: float


class InfoResponse(BaseModel):
    name: str
    version: str
    auth_enabled: bool
    rate_limit: str | None
    max_batch_items: int
    max_body_bytes: int
    reload_interval_seconds: float
    ready: bool
    model_version: str | None
    forecast_model_versions: list[str]
    n_series: int
    n_stores: int
    stores: list[str]
    forecast_first_date: dt.date | None
    forecast_last_date: dt.date | None
    data_first_date: dt.date | None
    data_last_date: dt.date | None
    interval_level: float


class ModelInfoResponse(BaseModel):
    name: str
    version: str
    run_id: str | None
    registered_at: str | None
    loaded_at: dt.datetime
    training_window: dict[str, Any] = Field(
        description="train_start_d, train_end_d, horizon (+ dates when known)."
    )
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    feature_columns: list[str]
    smoke_test: str


class FeatureImportance(BaseModel):
    feature: str
    gain: float
    split: float
    gain_share: float = Field(description="gain / total gain")


class FeatureImportanceResponse(BaseModel):
    model_version: str
    source: Literal["mlflow_artifact", "model", "export"]
    importances: list[FeatureImportance]
