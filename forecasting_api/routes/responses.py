"""Error answers shared by the routers (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from forecasting_api.schemas import ErrorResponse


def err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: err("Missing or invalid API key"),
    429: {
        **err("Rate limit exceeded"),
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}
        },
    },
}


def error(status: int, message: str) -> Response:
    """An :class:`ErrorResponse` answer."""
    return Response(
        ErrorResponse(detail=message).model_dump_json(exclude_none=True),
        status_code=status,
        media_type="application/json",
    )
