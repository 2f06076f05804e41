"""Structured JSON logs (structlog) and Prometheus metrics for the API.

One log line per request: request_id, method, endpoint (route template), status,
latency_ms, client fingerprint. Never the Authorization header, query strings or bodies.
Metrics live in a per-app registry served at ``/metrics``:

* ``forecasting_api_requests_total{method,endpoint,status}``
* ``forecasting_api_request_duration_seconds{method,endpoint}`` (histogram: p50/p95/p99
  via ``histogram_quantile``)
* ``forecasting_api_predictions_total{source}`` (items answered, batch_forecast | model)
* ``forecasting_api_rate_limited_total``
* ``forecasting_api_model_info{version,run_id}`` (1 for the loaded champion)
* ``forecasting_api_forecasts_info{version}`` / ``forecasting_api_forecasts_rows``
* ``forecasting_api_ready`` (1 when forecasts and model are loaded)
* ``forecasting_api_reloads_total`` (snapshot swaps)
* ``forecasting_api_reload_failures_total{source}`` (versions refused: forecasts, features, model)
* ``forecasting_api_source_error{source}`` (1 while forecasts/features/model/registry has an error)
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from forecasting_api.services.snapshot import Snapshot

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
_RID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

SOURCES = ("forecasts", "features", "model", "registry")
BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stdout for structlog and the standard library (mlflow, uvicorn, ours)."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    handler.set_name("forecasting_api_json")
    for name in ("forecasting_api", "forecasting_assets"):
        lg = logging.getLogger(name)
        lg.handlers = [h for h in lg.handlers if h.get_name() != "forecasting_api_json"]
        lg.addHandler(handler)
        lg.setLevel(lvl)
        lg.propagate = False


class Metrics:
    """Prometheus collectors of one app instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "forecasting_api_requests",
            "HTTP requests",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "forecasting_api_request_duration_seconds",
            "HTTP request latency",
            ["method", "endpoint"],
            buckets=BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "forecasting_api_predictions", "Items answered", ["source"], registry=r
        )
        self.rate_limited = Counter(
            "forecasting_api_rate_limited", "Requests answered 429", registry=r
        )
        self.model_info = Gauge(
            "forecasting_api_model_info",
            "Loaded champion model (1)",
            ["version", "run_id"],
            registry=r,
        )
        self.forecasts_info = Gauge(
            "forecasting_api_forecasts_info",
            "Loaded forecasts model version(s) (1)",
            ["version"],
            registry=r,
        )
        self.forecast_rows = Gauge(
            "forecasting_api_forecasts_rows", "Rows of forecasts loaded", registry=r
        )
        self.ready = Gauge(
            "forecasting_api_ready", "1 when forecasts and model are loaded", registry=r
        )
        self.reloads = Counter("forecasting_api_reloads", "Snapshot swaps", registry=r)
        self.reload_failures = Counter(
            "forecasting_api_reload_failures",
            "Versions refused by the reloader",
            ["source"],
            registry=r,
        )
        self.source_error = Gauge(
            "forecasting_api_source_error", "1 while a source has an error", ["source"], registry=r
        )

    def on_snapshot(self, snap: Snapshot) -> None:
        """Refresh the gauges that describe what is loaded."""
        self.model_info.clear()
        if snap.model is not None:
            self.model_info.labels(snap.model.version, snap.model.run_id or "").set(1)
        self.forecasts_info.clear()
        if snap.forecasts is not None:
            for v in snap.forecasts.model_versions:
                self.forecasts_info.labels(v).set(1)
        self.forecast_rows.set(snap.forecasts.n_rows if snap.forecasts else 0)
        self.ready.set(1 if snap.ready else 0)
        for source in SOURCES:
            self.source_error.labels(source).set(1 if source in snap.errors else 0)


class ObservabilityMiddleware:
    """Pure ASGI middleware: request id, access log, latency/count metrics."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], metrics: Metrics, access_log: bool = True
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.log = structlog.get_logger("forecasting_api.access")
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(
        self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                cand = value.decode("latin-1")
                rid = cand if _RID.match(cand) else None
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status_code = 500
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            key = (method, endpoint, status_code)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    self.metrics.latency.labels(method, endpoint),
                    self.metrics.requests.labels(method, endpoint, str(status_code)),
                )
            children[0].observe(elapsed)
            children[1].inc()
            if self.access_log:
                state = scope.get("state", {})
                self.log.info(
                    "request",
                    request_id=rid,
                    method=method,
                    endpoint=endpoint,
                    status=status_code,
                    latency_ms=round(elapsed * 1000, 3),
                    client=state.get("client", "anonymous"),
                )
