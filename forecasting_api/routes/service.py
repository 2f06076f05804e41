"""Service endpoints: root, health, readiness, metrics, info."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from forecasting_api import __version__
from forecasting_api.deps import MetricsDep, ServiceDep, SettingsDep, SnapshotDep, get_client
from forecasting_api.routes.responses import AUTH_ERRORS
from forecasting_api.schemas import ComponentHealth, HealthResponse, InfoResponse, RootResponse
from forecasting_api.services.predictor import INTERVAL_LEVEL
from forecasting_api.services.reloader import ServiceState
from forecasting_api.services.snapshot import Snapshot
from forecasting_api.settings import ApiSettings

SERVICE_NAME = "m5-forecasting-api"

router = APIRouter(tags=["service"])


def _age(ts: dt.datetime | None, now: dt.datetime) -> float | None:
    return round((now - ts).total_seconds(), 3) if ts else None


def _parse_iso(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def health_of(snap: Snapshot, service: ServiceState, settings: ApiSettings) -> HealthResponse:
    """The present state of every source (errors are recomputed on every reload check)."""
    now = dt.datetime.now(dt.UTC)
    fc, fs, m = snap.forecasts, snap.features, snap.model
    model_h = ComponentHealth(
        loaded=m is not None,
        version=m.version if m else None,
        loaded_at=m.loaded_at if m else None,
        age_seconds=_age(_parse_iso(m.info.get("registered_at")) if m else None, now),
        detail={"run_id": m.run_id, "smoke_test": m.smoke_test, "sha256": m.digest} if m else {},
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
    registry_h = ComponentHealth(
        loaded="registry" not in snap.errors and service.status.champion is not None,
        version=service.status.champion,
        detail={"champion_version": service.status.champion},
        error=snap.errors.get("registry"),
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
        registry=registry_h,
        last_reload_check=service.status.last_check,
        reload_interval_seconds=settings.reload_seconds,
    )


@router.get("/", summary="Name, version, links")
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


@router.get("/health", summary="Liveness and readiness (always 200 while the process lives)")
async def health(snap: SnapshotDep, service: ServiceDep, settings: SettingsDep) -> HealthResponse:
    return health_of(snap, service, settings)


@router.get(
    "/health/ready",
    response_model=HealthResponse,
    summary="Readiness probe: 200 when ready, 503 otherwise",
    responses={503: {"model": HealthResponse, "description": "Not ready"}},
)
async def health_ready(snap: SnapshotDep, service: ServiceDep, settings: SettingsDep) -> Response:
    body = health_of(snap, service, settings)
    return Response(
        body.model_dump_json(),
        status_code=200 if body.ready else 503,
        media_type="application/json",
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/info", summary="Service info", responses=AUTH_ERRORS, dependencies=[Depends(get_client)]
)
async def info(snap: SnapshotDep, settings: SettingsDep) -> InfoResponse:
    fc = snap.forecasts
    series = set(fc.series_pos) if fc else set()
    if snap.features:
        series |= set(snap.features.series)
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
        n_series=len(series),
        n_stores=len(snap.stores),
        stores=sorted(snap.stores),
        forecast_first_date=fc.min_date if fc else None,
        forecast_last_date=fc.max_date if fc else None,
        data_first_date=snap.data_start,
        data_last_date=snap.data_end,
        interval_level=INTERVAL_LEVEL,
    )
