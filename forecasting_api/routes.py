"""HTTP endpoints (ARCHITECTURE §6)."""

from __future__ import annotations

import datetime as dt
from collections import Counter as TallyCounter
from collections.abc import Sequence
from typing import Any

import anyio
import pydantic_core
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from forecasting_api import __version__
from forecasting_api.schemas import (
    BatchPredictionRequest,
    ComponentHealth,
    ErrorResponse,
    FeatureImportance,
    FeatureImportanceResponse,
    HealthResponse,
    InfoResponse,
    ModelInfoResponse,
    PredictionRequest,
    PredictionResponse,
    RootResponse,
)
from forecasting_api.serving import (
    INTERVAL_LEVEL,
    PredictionError,
    QueryLike,
    ServiceState,
    Snapshot,
    complete,
    plan,
)
from forecasting_api.settings import ApiSettings

SERVICE_NAME = "m5-forecasting-api"


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _err("Missing or invalid API key"),
    429: {
        **_err("Rate limit exceeded"),
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}
        },
    },
}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: _err("Unknown item, store or series"),
    413: _err("Request body too large"),
    422: _err("Malformed body, wrong types, or a date outside the data"),
    503: _err("Forecasts / model not loaded yet"),
}


def _json(payload: Any, status: int = 200) -> Response:
    """Compact JSON serialized in Rust (pydantic-core): about 4x faster than ``json.dumps``."""
    return Response(
        pydantic_core.to_json(payload), status_code=status, media_type="application/json"
    )


def _error(status: int, message: str) -> Response:
    return _json({"detail": message}, status)


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _age(ts: dt.datetime | None, now: dt.datetime) -> float | None:
    return round((now - ts).total_seconds(), 3) if ts else None


def _health(snap: Snapshot, service: ServiceState, settings: ApiSettings) -> HealthResponse:
    now = dt.datetime.now(dt.UTC)
    fc, fs, m = snap.forecasts, snap.features, snap.model
    model_h = ComponentHealth(
        loaded=m is not None,
        version=m.version if m else None,
        loaded_at=m.loaded_at if m else None,
        age_seconds=_age(_parse_iso(m.info.get("registered_at")) if m else None, now),
        detail={"run_id": m.run_id, "smoke_test": m.smoke_test} if m else {},
        error=snap.errors.get("model"),
    )
    fc_h = ComponentHealth(
        loaded=fc is not None,
        version=",".join(fc.model_versions) if fc else None,
        loaded_at=fc.loaded_at if fc else None,
        age_seconds=_age(fc.file_modified_at, now) if fc else None,
        detail={
            "rows": fc.n_rows,
            "series": fc.n_series,
            "first_date": fc.min_date.isoformat(),
            "last_date": fc.max_date.isoformat(),
        }
        if fc
        else {},
        error=snap.errors.get("forecasts"),
    )
    fs_h = ComponentHealth(
        loaded=fs is not None,
        version=fs.version if fs else None,
        loaded_at=fs.loaded_at if fs else None,
        detail={
            "series": len(fs.series),
            "first_date": fs.min_date.isoformat(),
            "last_date": fs.max_date.isoformat(),
        }
        if fs
        else {},
        error=snap.errors.get("features"),
    )
    if snap.ready and not snap.errors:
        status = "ok"
    elif fc is not None or m is not None:
        status = "degraded"
    else:
        status = "unavailable"
    return HealthResponse(
        status=status,
        live=True,
        ready=snap.ready,
        uptime_seconds=round((now - service.started_at).total_seconds(), 3),
        model=model_h,
        forecasts=fc_h,
        features=fs_h,
        last_reload_check=service.status.last_check,
        reload_interval_seconds=settings.reload_seconds,
    )


def _parse_iso(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def build_router(guard: Any, settings: ApiSettings) -> APIRouter:
    """All routes; protected ones depend on ``guard`` (API key + rate limit)."""
    router = APIRouter()
    guarded: dict[str, Any] = {"dependencies": [Depends(guard)]}

    @router.get("/", response_model=RootResponse, tags=["service"], summary="Name, version, links")
    async def root() -> RootResponse:
        return RootResponse(
            name=SERVICE_NAME,
            version=__version__,
            description="Daily unit-sales forecasts for M5 item x store series (28-day horizon).",
            links={
                "docs": "/docs",
                "openapi": "/openapi.json",
                "health": "/health",
                "info": "/info",
                "model_info": "/model/info",
                "feature_importance": "/model/features/importance",
                "predict": "/predict",
                "predict_batch": "/predict/batch",
                "metrics": "/metrics",
            },
        )

    @router.get(
        "/health",
        response_model=HealthResponse,
        tags=["service"],
        summary="Liveness and readiness (always 200 while the process lives)",
    )
    async def health(request: Request) -> HealthResponse:
        return _health(_state(request).snapshot, _state(request), settings)

    @router.get(
        "/health/ready",
        response_model=HealthResponse,
        tags=["service"],
        summary="Readiness probe: 200 when ready, 503 otherwise",
        responses={503: {"model": HealthResponse, "description": "Not ready"}},
    )
    async def health_ready(request: Request) -> Response:
        body = _health(_state(request).snapshot, _state(request), settings)
        return Response(
            body.model_dump_json(),
            status_code=200 if body.ready else 503,
            media_type="application/json",
        )

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @router.get(
        "/info",
        response_model=InfoResponse,
        tags=["service"],
        summary="Service info",
        responses=AUTH_ERRORS,
        **guarded,
    )
    async def info(request: Request) -> InfoResponse:
        snap = _state(request).snapshot
        fc = snap.forecasts
        n_series = (
            len(set(fc.series_pos) | set(snap.features.series if snap.features else ()))
            if fc
            else (len(snap.features.series) if snap.features else 0)
        )
        rl = settings.rate_limit
        return InfoResponse(
            name=SERVICE_NAME,
            version=__version__,
            auth_enabled=settings.auth_enabled,
            rate_limit=f"{rl[0]}/{rl[1]:g}s" if rl else None,
            max_batch_items=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            reload_interval_seconds=settings.reload_seconds,
            ready=snap.ready,
            model_version=snap.model.version if snap.model else None,
            forecast_model_versions=list(fc.model_versions) if fc else [],
            n_series=n_series,
            n_stores=len(snap.stores),
            stores=sorted(snap.stores),
            forecast_first_date=fc.min_date if fc else None,
            forecast_last_date=fc.max_date if fc else None,
            data_first_date=snap.data_start,
            data_last_date=snap.data_end,
            interval_level=INTERVAL_LEVEL,
        )

    @router.get(
        "/model/info",
        response_model=ModelInfoResponse,
        tags=["model"],
        summary="Champion model: version, training window, metrics, features",
        responses={**AUTH_ERRORS, 503: _err("No model loaded")},
        **guarded,
    )
    async def model_info(request: Request) -> Response | ModelInfoResponse:
        m = _state(request).snapshot.model
        if m is None:
            return _error(503, "no champion model is loaded yet")
        params = dict(m.info.get("params") or {})
        window = {
            k: params[k]
            for k in (
                "train_start_d",
                "train_end_d",
                "horizon",
                "train_start",
                "train_end",
                "train_start_date",
                "train_end_date",
            )
            if k in params
        }
        return ModelInfoResponse(
            name=m.info.get("name", "m5_demand_model"),
            version=m.version,
            run_id=m.run_id,
            registered_at=m.info.get("registered_at"),
            loaded_at=m.loaded_at,
            training_window=window,
            metrics={k: float(v) for k, v in (m.info.get("metrics") or {}).items()},
            params={k: v for k, v in params.items() if k != "feature_columns"},
            tags={k: str(v) for k, v in (m.info.get("tags") or {}).items()},
            feature_columns=list(m.feature_columns),
            smoke_test=m.smoke_test,
        )

    @router.get(
        "/model/features/importance",
        response_model=FeatureImportanceResponse,
        tags=["model"],
        summary="Feature importance of the serving model",
        responses={
            **AUTH_ERRORS,
            404: _err("No importance available"),
            503: _err("No model loaded"),
        },
        **guarded,
    )
    async def importance(request: Request) -> Response | FeatureImportanceResponse:
        m = _state(request).snapshot.model
        if m is None:
            return _error(503, "no champion model is loaded yet")
        if not m.importance:
            return _error(404, f"no feature importance recorded for model v{m.version}")
        total = sum(v["gain"] for v in m.importance.values()) or 1.0
        rows = sorted(m.importance.items(), key=lambda kv: -kv[1]["gain"])
        return FeatureImportanceResponse(
            model_version=m.version,
            source=m.importance_source or "model",  # type: ignore[arg-type]
            importances=[
                FeatureImportance(
                    feature=f, gain=v["gain"], split=v["split"], gain_share=v["gain"] / total
                )
                for f, v in rows
            ],
        )

    async def _answer(request: Request, queries: Sequence[QueryLike]) -> list[dict[str, Any]]:
        snap = _state(request).snapshot  # one snapshot for the whole request
        now = dt.datetime.now(dt.UTC)
        if len(queries) <= 2000:
            p = plan(snap, queries, now)
        else:
            p = await anyio.to_thread.run_sync(plan, snap, queries, now)
        if p.fallback:
            answers = await anyio.to_thread.run_sync(complete, snap, p)
        else:
            answers = complete(snap, p)
        tally = TallyCounter(a["source"] for a in answers)
        for source, n in tally.items():
            request.app.state.metrics.predictions.labels(source).inc(n)
        return answers

    @router.post(
        "/predict",
        response_model=PredictionResponse,
        tags=["predict"],
        summary="Forecast one item x store x day",
        responses=PREDICT_ERRORS,
        **guarded,
    )
    async def predict_one(request: Request, body: PredictionRequest) -> Response:
        try:
            answers = await _answer(request, [body])
        except PredictionError as exc:
            return _error(exc.status, exc.message)
        return _json(answers[0])

    @router.post(
        "/predict/batch",
        response_model=list[PredictionResponse],
        tags=["predict"],
        summary=f"Forecast up to {settings.max_batch} items at once",
        responses=PREDICT_ERRORS,
        **guarded,
    )
    async def predict_batch(request: Request, body: BatchPredictionRequest) -> Response:
        if len(body.items) > settings.max_batch:
            return _error(413, f"too many items: {len(body.items)} > {settings.max_batch}")
        try:
            answers = await _answer(request, body.items)
        except PredictionError as exc:
            return _error(exc.status, exc.message)
        return _json(answers)

    return router
