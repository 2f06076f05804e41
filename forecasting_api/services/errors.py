"""The two errors of the serving layer (their messages are user-facing)."""

from __future__ import annotations


class LoadError(RuntimeError):
    """A materialized file or model could not be loaded."""


class TransientLoadError(LoadError):
    """A load failed for a reason that may pass (e.g. the registry was mid-write): retried."""


class SourceUnavailable(RuntimeError):
    """A source cannot be asked for its current version (e.g. the registry is unreachable)."""


class PredictionError(Exception):
    """A request cannot be answered; carries the HTTP status and a clear message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
