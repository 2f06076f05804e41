"""Configuration of the REST API: a pydantic-settings ``BaseSettings`` read from the environment.

| variable | default | meaning |
|---|---|---|
| ``FORECASTING_API_AUTH`` | ``on`` | ``off`` disables API keys (local use only) |
| ``FORECASTING_API_KEYS`` | – | comma-separated accepted Bearer tokens |
| ``FORECASTING_API_KEYS_FILE`` | – | file with one key per line (``#`` comments allowed) |
| ``FORECASTING_API_RATE_LIMIT`` | ``100/minute`` | per key (or client IP); ``N``, ``N/second``, ``N/minute``, ``N/hour``; ``0``/``off`` disables |
| ``FORECASTING_API_CORS_ORIGINS`` | – | comma-separated allowed origins (none by default) |
| ``FORECASTING_API_RELOAD_SECONDS`` | ``30`` | poll interval for a new champion / forecasts file; ``0`` disables |
| ``FORECASTING_API_MAX_BODY_BYTES`` | ``2097152`` | larger request bodies get 413 |
| ``FORECASTING_API_MAX_BATCH`` | ``10000`` | most items in one ``/predict/batch`` (schema, OpenAPI, /info, 413) |
| ``FORECASTING_API_REQUEST_TIMEOUT_SECONDS`` | ``30`` | whole-request limit → 503 |
| ``FORECASTING_API_BODY_TIMEOUT_SECONDS`` | ``10`` | most seconds to receive a request body → 408 |
| ``FORECASTING_API_TRUSTED_PROXIES`` | – | comma-separated proxy addresses/networks whose ``X-Forwarded-For`` is believed |
| ``FORECASTING_API_LOG_LEVEL`` | ``INFO`` | log level of the JSON logs |
| ``FORECASTING_API_ACCESS_LOG`` | ``on`` | one JSON log line per request |

Paths (``FORECASTING_HOME``, ``MLFLOW_TRACKING_URI``) come from
:func:`forecasting_assets.settings.get_settings`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_OFF = {"0", "off", "false", "no", "disabled", "none"}
PUBLIC_PATHS = frozenset(
    {"/", "/health", "/health/ready", "/docs", "/docs/oauth2-redirect", "/redoc",
     "/openapi.json", "/metrics"}
)  # fmt: skip
"""Paths that need no API key."""


class SettingsError(ValueError):
    """An environment variable of the API has an invalid value."""


def parse_rate_limit(text: str | None) -> tuple[int, float] | None:
    """``"100/minute"`` -> ``(100, 60.0)``; ``"100"`` means per minute; ``0``/``off`` -> None."""
    if text is None or not text.strip():
        return 100, 60.0
    value = text.strip().lower()
    if value in _OFF:
        return None
    count_s, _, period_s = value.partition("/")
    try:
        count = int(count_s)
    except ValueError as exc:
        raise SettingsError(f"FORECASTING_API_RATE_LIMIT: bad count in {text!r}") from exc
    if count <= 0:
        return None
    period_s = period_s.strip()
    period = _PERIODS.get(period_s or "minute") or _PERIODS.get(period_s.rstrip("s"))
    if period is None:
        raise SettingsError(f"FORECASTING_API_RATE_LIMIT: unknown period in {text!r}")
    return count, period


def _split(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


def _read_keys_file(path: str) -> tuple[str, ...]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SettingsError(f"FORECASTING_API_KEYS_FILE: cannot read {path}: {exc}") from exc
    return tuple(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#"))


CommaList = Annotated[tuple[str, ...], NoDecode]


class ApiSettings(BaseSettings):
    """Resolved API configuration (immutable); ``ApiSettings()`` reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FORECASTING_API_", frozen=True, extra="ignore", populate_by_name=True
    )

    auth_enabled: bool = Field(True, validation_alias="FORECASTING_API_AUTH")
    api_keys: CommaList = Field((), validation_alias="FORECASTING_API_KEYS", repr=False)
    keys_file: str = ""
    rate_limit: Annotated[tuple[int, float] | None, NoDecode] = (100, 60.0)
    cors_origins: CommaList = ()
    reload_seconds: float = Field(30.0, ge=0)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_batch: int = Field(10_000, ge=1)
    request_timeout_seconds: float = Field(30.0, gt=0)
    body_timeout_seconds: float = Field(10.0, gt=0)
    trusted_proxies: CommaList = ()
    log_level: str = "INFO"
    access_log: bool = True

    @field_validator("auth_enabled", "access_log", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() not in _OFF if value.strip() else True
        return value

    @field_validator("api_keys", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> tuple[str, ...]:
        return _split(value)

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return parse_rate_limit(value) if value is None or isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if v != "*":
                ipaddress.ip_network(v, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _with_keys_file(self) -> ApiSettings:
        if self.keys_file:
            keys = _split((*self.api_keys, *_read_keys_file(self.keys_file)))
            object.__setattr__(self, "api_keys", keys)
        return self

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Read the ``FORECASTING_API_*`` variables; :class:`SettingsError` if one is invalid."""
        try:
            return cls()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise SettingsError(
                f"invalid FORECASTING_API_* setting {where}: {first['msg']}"
            ) from exc

    @property
    def public_paths(self) -> frozenset[str]:
        return PUBLIC_PATHS
