"""The FastAPI app: ``uvicorn forecasting_api.main:app``.

Startup (lifespan) loads whatever is materialized under ``FORECASTING_HOME`` and the MLflow
champion; nothing materialized is fine (readiness false, predictions 503). A background task
polls the forecasts file, the features table and the champion alias every
``FORECASTING_API_RELOAD_SECONDS`` and swaps in a new snapshot atomically; a new model is
verified in a child process first (:mod:`forecasting_api.services.model_bundle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from forecasting_api import __version__
from forecasting_api.observability import Metrics, ObservabilityMiddleware, configure_logging
from forecasting_api.routes import ROUTERS
from forecasting_api.security import Guard, GuardMiddleware, RequestLimitsMiddleware
from forecasting_api.services.reloader import ServiceState
from forecasting_api.settings import ApiSettings

log = structlog.get_logger("forecasting_api")

DESCRIPTION = """
Daily unit-sales forecasts for Walmart M5 item × store series.

* Dates inside the 28-day horizon are answered from the materialized batch forecasts
  (`source: batch_forecast`); other dates covered by the features table are computed now by
  the MLflow champion model (`source: model`).
* Send `Authorization: Bearer <key>` (keys from `FORECASTING_API_KEYS`) unless the server
  runs with `FORECASTING_API_AUTH=off`. `/`, `/health`, `/health/ready`, `/docs`,
  `/openapi.json` and `/metrics` are public.
* Rate limit: 100 requests/minute per key (or client) by default → 429 with `Retry-After`.
* `X-Forwarded-For` is believed only from `FORECASTING_API_TRUSTED_PROXIES` (none by default).
"""


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        if e.get("type") == "json_invalid":
            pos = e.get("loc", ("body", "?"))[-1]
            return f"malformed JSON body (error at character {pos})"
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(parts) + more


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build an app; ``settings`` default to the environment (``ApiSettings.from_env``)."""
    settings = settings or ApiSettings.from_env()
    configure_logging(settings.log_level)
    metrics = Metrics()

    def on_failure(source: str, message: str) -> None:
        metrics.reload_failures.labels(source).inc()
        log.error("reload refused a version", source=source, error=message)

    service = ServiceState(on_change=metrics.on_snapshot, on_failure=on_failure)
    last_swaps = 0

    def on_reloaded() -> None:
        nonlocal last_swaps
        if service.status.swaps != last_swaps:
            metrics.reloads.inc(service.status.swaps - last_swaps)
            last_swaps = service.status.swaps

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auth_enabled and not settings.api_keys:
            log.warning(
                "auth is on but no API keys are configured: every protected request "
                "gets 401 (set FORECASTING_API_KEYS or FORECASTING_API_AUTH=off)"
            )
        await _refresh(service)
        _settle_heap()
        snap = service.snapshot
        metrics.on_snapshot(snap)
        log.info(
            "api started",
            ready=snap.ready,
            model_version=snap.model.version if snap.model else None,
            forecast_rows=snap.forecasts.n_rows if snap.forecasts else 0,
            errors=snap.errors or None,
            auth=settings.auth_enabled,
        )
        task = None
        if settings.reload_seconds > 0:
            task = asyncio.create_task(_reload_loop(service, settings.reload_seconds, on_reloaded))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="M5 demand forecasting API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = metrics
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in ctype.lower():
            return JSONResponse(
                {"detail": "request body must be JSON: send 'Content-Type: application/json'"},
                status_code=422,
            )
        errs = [
            {
                "loc": [x if isinstance(x, int) else str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()[:50]
        ]
        return JSONResponse(
            {"detail": _validation_message(list(exc.errors())), "errors": errs}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.method == "POST":  # undecodable body
            return JSONResponse(
                {"detail": "malformed request body: it could not be parsed as UTF-8 JSON"},
                status_code=422,
            )
        return JSONResponse(
            {"detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _on_error(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error",
            error_type=type(exc).__name__,
            request_id=request.scope.get("state", {}).get("request_id"),
        )
        return JSONResponse({"detail": "internal error"}, status_code=500)

    # Middleware, outermost last: observability > CORS > proxy headers > guard (key, rate
    # limit) > limits (body size and read time, request time) > the routes. Nothing reads a
    # body before the guard has accepted the request.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout_seconds,
        request_timeout=settings.request_timeout_seconds,
    )
    app.add_middleware(
        GuardMiddleware,
        guard=Guard(settings, on_limited=metrics.rate_limited.inc),
        endpoints=frozenset(app.openapi()["paths"]),
    )
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, access_log=settings.access_log)
    return app


def _openapi(app: FastAPI, settings: ApiSettings) -> dict[str, Any]:
    """The OpenAPI document, with ``FORECASTING_API_MAX_BATCH`` as the batch ``maxItems``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        items = schema["components"]["schemas"]["BatchPredictionRequest"]["properties"]["items"]
        items["maxItems"] = settings.max_batch
        app.openapi_schema = schema
    return app.openapi_schema


async def _refresh(service: ServiceState) -> bool:
    try:
        return await anyio.to_thread.run_sync(service.refresh)
    except Exception as exc:  # never let a reload kill the service
        log.error("reload failed", error=f"{type(exc).__name__}: {exc}")
        return False


async def _reload_loop(service: ServiceState, every: float, after: Any) -> None:
    while True:
        await asyncio.sleep(every)
        if await _refresh(service):
            _settle_heap()
        after()


def _settle_heap() -> None:
    """Collect once, then freeze what is alive so the cyclic GC stops re-scanning it.

    The loaded snapshot and the imported libraries (mlflow, lightgbm, pandas, ...) are
    about 360,000 long-lived objects. A full (generation 2) collection over them took
    0.3-0.7 s on the benchmark machine, every few seconds under batch load, and stalled every
    request meanwhile: that was the p99 of ``/predict/batch``. Frozen objects are skipped by
    the collector (reference counting still frees them). Unfreezing first lets this
    collection reclaim cycles of the snapshot a reload replaced: one pause per swap.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


app = create_app()
