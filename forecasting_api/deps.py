"""FastAPI dependencies: the service state, its current snapshot, the settings, the caller.

Each is an ``Annotated`` alias, so that a route just declares ``snap: SnapshotDep``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from forecasting_api.observability import Metrics
from forecasting_api.security import bearer_scheme
from forecasting_api.services.reloader import ServiceState
from forecasting_api.services.snapshot import Snapshot
from forecasting_api.settings import ApiSettings


async def get_service(request: Request) -> ServiceState:
    return request.app.state.service


async def get_snapshot(request: Request) -> Snapshot:
    """The snapshot of the whole request (one attribute read: atomic under reloads)."""
    return request.app.state.service.snapshot


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> str:
    """The caller's fingerprint, set by :class:`~forecasting_api.security.GuardMiddleware`
    once the key and the rate limit were checked (before the body was read)."""
    client = request.scope.get("state", {}).get("client")
    if client is None:  # the guard did not run: refuse rather than serve unchecked
        raise HTTPException(401, "missing API key", headers={"WWW-Authenticate": "Bearer"})
    return client


ServiceDep = Annotated[ServiceState, Depends(get_service)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ClientDep = Annotated[str, Depends(get_client)]
