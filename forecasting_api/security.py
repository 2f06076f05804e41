"""API keys (Bearer tokens), per-client rate limiting, request size and time limits.

All of it runs as ASGI middleware, before FastAPI reads or parses a body: a request without a
valid key gets 401 whatever its body holds, and every request counts against the limits.

Keys are compared in constant time and never logged: a client is identified in logs and
rate-limit buckets by a short SHA-256 fingerprint of its key (or ``ip:<address>`` hashed the
same way when auth is off or the key is wrong).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.security import HTTPBearer

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


# --------------------------------------------------------------------------- ASGI plumbing
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(
    send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """Answer with a JSON body and ``Connection: close`` when the body was not read."""
    body = json.dumps(payload).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


# --------------------------------------------------------------------------- the guard
class Guard:
    """API key and rate limit of one request, decided from its headers alone.

    ``client_of`` names the rate-limit bucket of an unauthenticated request: its address, or
    one shared bucket for every request that carries ``X-Forwarded-For`` from an address that
    is not a trusted proxy (so changing that header never buys a fresh bucket).
    """

    def __init__(self, settings: ApiSettings, on_limited: Callable[[], None] | None = None):
        self.checker = KeyChecker(settings.api_keys)
        self.limiter = RateLimiter(*settings.rate_limit) if settings.rate_limit else None
        self.auth_on = settings.auth_enabled
        self.public = settings.public_paths
        self.trusted = bool(settings.trusted_proxies)
        self.on_limited = on_limited

    def client_of(self, scope: Scope) -> str:
        if not self.trusted and _header(scope, b"x-forwarded-for") is not None:
            return "ip:forwarded-untrusted"
        client = scope.get("client")
        return "ip:" + fingerprint(client[0] if client else "unknown")

    def check(self, scope: Scope) -> tuple[str | None, tuple[int, str, dict[str, str]] | None]:
        """``(client, None)`` when allowed, else ``(client, (status, message, headers))``."""
        if not self.auth_on:
            client = self.client_of(scope)
        else:
            auth = _header(scope, b"authorization") or ""
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                denial = (401, "missing API key: send 'Authorization: Bearer <key>'")
            elif not self.checker or not self.checker.valid(token.strip()):
                denial = (401, "invalid API key")
            else:
                denial = None
            if denial is not None:
                client = self.client_of(scope)
                limited = self._limit(client)
                return client, limited or (*denial, {"WWW-Authenticate": "Bearer"})
            client = "key:" + fingerprint(token.strip())
        return client, self._limit(client)

    def _limit(self, client: str) -> tuple[int, str, dict[str, str]] | None:
        if self.limiter is None:
            return None
        wait = self.limiter.check(client)
        if wait <= 0:
            return None
        if self.on_limited is not None:
            self.on_limited()
        return (
            429,
            f"rate limit exceeded ({self.limiter.limit} requests per {self.limiter.period:g} s); "
            f"retry after {math.ceil(wait)} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


class GuardMiddleware:
    """Run :class:`Guard` before anything reads the body: 401/429 whatever the body holds."""

    def __init__(self, app: App, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.guard.public:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self.app(scope, receive, send)  # CORS preflight (answered by CORS)
            return
        client, denial = self.guard.check(scope)
        scope.setdefault("state", {})["client"] = client
        if denial is not None:
            status_code, message, headers = denial
            await send_json(send, status_code, {"detail": message}, headers)
            return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- limits
class RequestLimitsMiddleware:
    """Body size (413), body-read time (408) and whole-request time (503) limits.

    The body is read here, before the app parses it, within ``body_timeout`` seconds in all;
    a client that stalls gets 408 and the connection is closed. The whole request must be
    answered within ``request_timeout`` seconds, else 503 (or the connection is dropped when
    the answer had already started).
    """

    def __init__(
        self, app: App, max_bytes: int, body_timeout: float, request_timeout: float
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.request_timeout):
                await self._handle(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            await send_json(
                send,
                503,
                {"detail": f"request timed out after {self.request_timeout:g} s"},
                {"Connection": "close"},
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            async with asyncio.timeout(self.body_timeout):
                while more:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    body = msg.get("body", b"")
                    size += len(body)
                    if size > self.max_bytes:
                        await self._too_large(send)
                        return
                    chunks.append(body)
                    more = msg.get("more_body", False)
        except TimeoutError:
            await send_json(
                send,
                408,
                {"detail": f"request body not received within {self.body_timeout:g} s"},
                {"Connection": "close"},
            )
            return
        payload = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_json(
            send,
            413,
            {"detail": f"request body too large (limit {self.max_bytes} bytes)"},
            {"Connection": "close"},
        )
