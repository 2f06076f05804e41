"""Polling the sources and swapping the served snapshot atomically.

Each :class:`Source` (forecasts file, features table, champion in the registry) has a cheap
version token. A refresh compares every token with the part being served, loads what changed
and composes a new :class:`~.snapshot.Snapshot`; a part that fails to load is not retried
until its token changes, and the previous part keeps serving. The errors of a snapshot are
recomputed on every refresh, so they describe the present: an error disappears as soon as its
cause does (the source recovers, or points back to what is served).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forecasting_api.services.errors import LoadError, SourceUnavailable, TransientLoadError
from forecasting_api.services.feature_source import FeatureSource
from forecasting_api.services.forecast_index import ForecastIndex, forecasts_path
from forecasting_api.services.model_bundle import load_last_good, load_model_bundle, smoke_test
from forecasting_api.services.snapshot import Snapshot
from forecasting_assets import store

logger = logging.getLogger(__name__)

Parts = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One thing the API serves: how to get its version token and how to load it."""

    name: str
    """Key of the part in the snapshot and in its errors."""
    what: str
    """How messages call it."""
    token: Callable[[], str | None]
    """Current version; ``None`` if absent; :class:`SourceUnavailable` if it cannot be asked."""
    load: Callable[[Parts], Any | None]
    """The new part (given the parts loaded so far in this refresh), ``None`` if absent."""
    gone: Callable[[], str]
    """Message when the served part's source has disappeared."""
    unavailable_key: str = ""
    """Errors key of :class:`SourceUnavailable` (default: ``name``)."""
    fallback: Callable[[Parts, str], Any | None] | None = None
    """When version ``token`` fails and nothing is served: an earlier good part, if any."""


def _champion_token() -> str | None:
    try:
        return store.champion_version()
    except store.RegistryUnavailable as exc:
        raise SourceUnavailable(f"registry unreachable ({exc})") from exc


def _champion_gone() -> str:
    if not store.registry_exists():
        return f"registry not found ({store.tracking_uri()})"
    return "no champion alias any more"


SOURCES: tuple[Source, ...] = (
    Source(
        "forecasts",
        "forecasts",
        lambda: store.file_version(forecasts_path()),
        lambda parts: ForecastIndex.load(),
        lambda: f"{forecasts_path().name} disappeared",
    ),
    Source(
        "features",
        "features table",
        lambda: store.file_version(store.features_path()),
        lambda parts: FeatureSource.load(),
        lambda: f"{store.features_path().name} disappeared",
    ),
    Source(
        "model",
        "model",
        _champion_token,
        lambda parts: load_model_bundle(parts["features"]),
        _champion_gone,
        unavailable_key="registry",
        fallback=lambda parts, bad: load_last_good(parts["features"], bad),
    ),
)


@dataclass
class ReloadStatus:
    """Book-keeping of the reload loop (shown by /health)."""

    last_check: dt.datetime | None = None
    checks: int = 0
    swaps: int = 0
    champion: str | None = None
    """Champion version the registry named at the last check."""
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Source -> (token, message) of the last version that failed to load."""
    feature_check: tuple[str, str, str | None] | None = None
    """(features version, model version, error) of the served model on the served features."""


class ServiceState:
    """Holds the current :class:`Snapshot`; ``refresh`` builds and swaps a new one.

    Readers just read ``state.snapshot`` (one attribute load, atomic under the GIL) and use
    that object for the whole request. ``on_change(snapshot)`` runs after every new snapshot,
    ``on_failure(source, message)`` after every failed load.
    """

    def __init__(
        self,
        on_change: Callable[[Snapshot], None] | None = None,
        on_failure: Callable[[str, str], None] | None = None,
        sources: tuple[Source, ...] = SOURCES,
    ) -> None:
        self.snapshot: Snapshot = Snapshot()
        self.status = ReloadStatus()
        self.started_at = dt.datetime.now(dt.UTC)
        self.sources = sources
        self._lock = threading.Lock()
        self._on_change = on_change
        self._on_failure = on_failure

    def refresh(self) -> bool:
        """Pick up new files / champion; keep the old parts on failure. True if swapped."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        cur = self.snapshot
        parts: Parts = {"forecasts": cur.forecasts, "features": cur.features, "model": cur.model}
        errors: dict[str, str] = {}
        changed = False
        t0 = time.perf_counter()
        for src in self.sources:
            changed |= self._update(src, parts, errors)
        self._check_model_on_features(parts, errors)
        self.status.last_check = dt.datetime.now(dt.UTC)
        self.status.checks += 1
        if changed or errors != cur.errors:
            self.snapshot = Snapshot.compose(
                parts["forecasts"], parts["features"], parts["model"], errors
            )  # the atomic swap
            if changed:
                self.status.swaps += 1
                logger.info(
                    "snapshot swapped: %s in %.2fs",
                    {k: getattr(v, "version", None) for k, v in parts.items()},
                    time.perf_counter() - t0,
                )
            if self._on_change is not None:
                self._on_change(self.snapshot)
        return changed

    def _update(self, src: Source, parts: Parts, errors: dict[str, str]) -> bool:
        """Bring one part up to date; record its present error, if any. True if replaced."""
        old = parts[src.name]
        served = getattr(old, "version", None)
        keep = f" (serving the previous {src.what})" if old is not None else ""
        try:
            token = src.token()
        except SourceUnavailable as exc:
            errors[src.unavailable_key or src.name] = f"{exc}{keep}"
            return False
        except Exception as exc:  # a failing check must not stop the others
            errors[src.name] = f"cannot check {src.what} ({type(exc).__name__}: {exc}){keep}"
            return False
        if src.name == "model":
            self.status.champion = token
        if token == served:
            self.status.failed.pop(src.name, None)
            return False
        if token is None:
            if old is not None:
                errors[src.unavailable_key or src.name] = f"{src.gone()}{keep}"
            return False
        failed = self.status.failed.get(src.name)
        if failed is not None and failed[0] == token:  # known bad version: do not retry
            errors[src.name] = failed[1]
            return False
        transient = False
        try:
            new = src.load(parts)
        except LoadError as exc:
            message = f"{exc}{keep}"
            transient = isinstance(exc, TransientLoadError)
        except Exception as exc:  # never let a reload kill the service
            logger.exception("%s reload crashed", src.name)
            message = f"{src.what} could not be loaded ({type(exc).__name__}: {exc}){keep}"
        else:
            if new is None:  # removed between the token and the load
                if old is not None:
                    errors[src.unavailable_key or src.name] = f"{src.gone()}{keep}"
                return False
            parts[src.name] = new
            self.status.failed.pop(src.name, None)
            return True
        logger.error("%s reload failed: %s", src.name, message)
        if self._on_failure is not None:
            self._on_failure(src.name, message)
        replaced = False
        if old is None and src.fallback is not None and not transient:
            good = src.fallback(parts, token)
            if good is not None:
                parts[src.name], replaced = good, True
                message = f"{message} (serving v{good.version}, the last good version)"
                logger.warning("%s: serving the last good version %s", src.name, good.version)
        if not transient:  # a verified failure: not retried until the version changes
            self.status.failed[src.name] = (token, message)
        errors[src.name] = message
        return replaced

    def _check_model_on_features(self, parts: Parts, errors: dict[str, str]) -> None:
        """Smoke-test the served (verified) model on the served features when either changed."""
        model, fs = parts["model"], parts["features"]
        if model is None or fs is None:
            return
        memo = self.status.feature_check
        if memo is None or memo[:2] != (fs.version, model.version):
            try:
                smoke_test(model, fs)
                problem = None
            except LoadError as exc:
                problem = f"{exc} (model answers may fail)"
            memo = self.status.feature_check = (fs.version, model.version, problem)
        if memo[2] is not None:
            errors.setdefault("features", memo[2])
