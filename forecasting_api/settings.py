"""Configuration of the REST API, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``FORECASTING_API_AUTH`` | ``on`` | ``off`` disables API keys (local use only) |
| ``FORECASTING_API_KEYS`` | – | comma-separated accepted Bearer tokens |
| ``FORECASTING_API_KEYS_FILE`` | – | file with one key per line (``#`` comments allowed) |
| ``FORECASTING_API_RATE_LIMIT`` | ``100/minute`` | per key (or client IP); ``N``, ``N/second``, ``N/minute``, ``N/hour``; ``0``/``off`` disables |
| ``FORECASTING_API_CORS_ORIGINS`` | – | comma-separated allowed origins (none by default) |
| ``FORECASTING_API_RELOAD_SECONDS`` | ``30`` | poll interval for a new champion / forecasts file; ``0`` disables |
| ``FORECASTING_API_MAX_BODY_BYTES`` | ``2097152`` | larger request bodies get 413 |
| ``FORECASTING_API_MAX_BATCH`` | ``10000`` | most items in one ``/predict/batch`` |
| ``FORECASTING_API_LOG_LEVEL`` | ``INFO`` | log level of the JSON logs |
| ``FORECASTING_API_ACCESS_LOG`` | ``on`` | one JSON log line per request |

Paths (``FORECASTING_HOME``, ``MLFLOW_TRACKING_URI``) come from
:func:`forecasting_assets.settings.get_settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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


class SettingsError(ValueError):
    """An environment variable of the API has an invalid value."""


def parse_rate_limit(text: str | None) -> tuple[int, float] | None:
    """``"100/minute"`` -> ``(100, 60.0)``; ``"100"`` means per minute; ``0``/``off`` -> None."""
    if text is None or not text.strip():
        return 100, 60.0
    value = text.strip().lower()
    if value in {"0", "off", "none", "false", "disabled"}:
        return None
    count_s, _, period_s = value.partition("/")
    try:
        count = int(count_s)
    except ValueError as exc:
        raise SettingsError(f"FORECASTING_API_RATE_LIMIT: bad count in {text!r}") from exc
    if count <= 0:
        return None
    period_s = (
        period_s.strip().rstrip("s") if period_s.strip() not in _PERIODS else period_s.strip()
    )
    period = _PERIODS.get(period_s or "minute")
    if period is None:
        raise SettingsError(f"FORECASTING_API_RATE_LIMIT: unknown period in {text!r}")
    return count, period


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _read_keys_file(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SettingsError(f"FORECASTING_API_KEYS_FILE: cannot read {path}: {exc}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _flag(text: str | None, default: bool) -> bool:
    if text is None or not text.strip():
        return default
    return text.strip().lower() not in {"0", "off", "false", "no", "disabled"}


@dataclass(frozen=True)
class ApiSettings:
    """Resolved API configuration (immutable)."""

    auth_enabled: bool = True
    api_keys: tuple[str, ...] = ()
    rate_limit: tuple[int, float] | None = (100, 60.0)
    cors_origins: tuple[str, ...] = ()
    reload_seconds: float = 30.0
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch: int = 10_000
    log_level: str = "INFO"
    access_log: bool = True
    public_paths: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {
                "/",
                "/health",
                "/health/ready",
                "/docs",
                "/docs/oauth2-redirect",
                "/redoc",
                "/openapi.json",
                "/metrics",
            }
        )
    )

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Read the ``FORECASTING_API_*`` variables (see the module docstring)."""
        env = os.environ
        keys = _split(env.get("FORECASTING_API_KEYS")) + _read_keys_file(
            env.get("FORECASTING_API_KEYS_FILE")
        )
        try:
            reload_s = float(env.get("FORECASTING_API_RELOAD_SECONDS", "30"))
            max_body = int(env.get("FORECASTING_API_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
            max_batch = int(env.get("FORECASTING_API_MAX_BATCH", "10000"))
        except ValueError as exc:
            raise SettingsError(f"invalid numeric FORECASTING_API_* setting: {exc}") from exc
        return cls(
            auth_enabled=_flag(env.get("FORECASTING_API_AUTH"), True),
            api_keys=tuple(dict.fromkeys(keys)),
            rate_limit=parse_rate_limit(env.get("FORECASTING_API_RATE_LIMIT")),
            cors_origins=tuple(_split(env.get("FORECASTING_API_CORS_ORIGINS"))),
            reload_seconds=max(reload_s, 0.0),
            max_body_bytes=max(max_body, 1024),
            max_batch=max(max_batch, 1),
            log_level=env.get("FORECASTING_API_LOG_LEVEL", "INFO").upper(),
            access_log=_flag(env.get("FORECASTING_API_ACCESS_LOG"), True),
        )
