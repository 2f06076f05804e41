"""API keys (Bearer tokens), per-client rate limiting and request-size limits.

Keys are compared in constant time and never logged: a client is identified in logs and
rate-limit buckets by a short SHA-256 fingerprint of its key (or ``ip:<address>`` hashed the
same way when auth is off or the key is wrong).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from forecasting_api.settings import ApiSettings

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="API key from FORECASTING_API_KEYS / FORECASTING_API_KEYS_FILE, sent as "
    "'Authorization: Bearer <key>'.",
)


def fingerprint(secret: str) -> str:
    """Short, non-reversible id of a key or address (safe to log)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


class KeyChecker:
    """Constant-time check of a token against the configured keys."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(k.encode("utf-8") for k in keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def valid(self, token: str) -> bool:
        tok = token.encode("utf-8")
        ok = False
        for key in self._keys:  # no early exit: same time whichever key matches
            ok |= hmac.compare_digest(tok, key)
        return ok


class RateLimiter:
    """Token bucket per client: ``limit`` requests per ``period`` seconds, bursts up to ``limit``.

    In-process (one worker). ``check`` returns 0 when allowed, else seconds to wait.
    """

    def __init__(self, limit: int, period: float, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.period = period
        self.rate = limit / period
        self.max_clients = max_clients
        self._buckets: dict[str, list[float]] = {}

    def check(self, client: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        b = self._buckets.get(client)
        if b is None:
            if len(self._buckets) >= self.max_clients:
                self._evict(now)
            b = self._buckets[client] = [float(self.limit), now]
        tokens = min(float(self.limit), b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return 0.0
        b[0] = tokens
        return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        """Drop buckets that are full again (idle clients)."""
        full = [
            k for k, (t, ts) in self._buckets.items() if t + (now - ts) * self.rate >= self.limit
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_clients:  # still full: drop the oldest half
            for k in sorted(self._buckets, key=lambda c: self._buckets[c][1])[
                : self.max_clients // 2
            ]:
                del self._buckets[k]


def _deny(code: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=code, detail=message, headers=headers)


def make_guard(
    settings: ApiSettings, on_limited: Callable[[], None] | None = None
) -> Callable[..., Awaitable[str]]:
    """FastAPI dependency: 401 without a valid key (when auth is on), 429 over the limit.

    Returns the client's fingerprint, also stored in ``request.state.client``.
    """
    checker = KeyChecker(settings.api_keys)
    limiter = RateLimiter(*settings.rate_limit) if settings.rate_limit else None
    auth_on = settings.auth_enabled

    def _limit(client: str) -> None:
        if limiter is None:
            return
        wait = limiter.check(client)
        if wait > 0:
            if on_limited is not None:
                on_limited()
            raise _deny(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit exceeded ({limiter.limit} requests per {limiter.period:g} s); "
                f"retry after {math.ceil(wait)} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    async def guard(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> str:
        host = request.client.host if request.client else "unknown"
        if not auth_on:
            client = "ip:" + fingerprint(host)
        elif credentials is None or credentials.scheme.lower() != "bearer":
            _limit("ip:" + fingerprint(host))
            raise _deny(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
        elif not checker or not checker.valid(credentials.credentials):
            _limit("ip:" + fingerprint(host))
            raise _deny(
                status.HTTP_401_UNAUTHORIZED, "invalid API key", {"WWW-Authenticate": "Bearer"}
            )
        else:
            client = "key:" + fingerprint(credentials.credentials)
        request.state.client = client
        _limit(client)
        return client

    return guard


# --------------------------------------------------------------------------- body size
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimitMiddleware:
    """Reject request bodies larger than ``max_bytes`` with 413 before the app parses them."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
                break
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(body)
            more = msg.get("more_body", False)
        payload = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body too large (limit {self.max_bytes} bytes)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
