"""Where the dashboard's inputs live, and the cache settings every reader shares.

Paths follow ``forecasting_assets.settings`` (``FORECASTING_HOME``) and the file names of
``forecasting_assets.contracts``; file versions come from ``forecasting_assets.store.file_version``
(mtime + size: a rewritten file gets a new version, so cached readers keyed on it re-read it).
"""

from __future__ import annotations

from pathlib import Path

from forecasting_assets import contracts, store
from forecasting_assets.settings import get_settings

TTL = 60
"""Seconds a cached read is kept, even if its file's version did not change."""
RUN_HINT = (
    "make demo",
    "dagster asset materialize -m forecasting_assets.definitions --select '*'",
)
"""The commands that materialize what the pages read."""


def home_dir() -> Path:
    """FORECASTING_HOME as the pipeline resolves it."""
    return get_settings().home


def export_path(name: str) -> Path:
    """An export under ``<FORECASTING_HOME>/exports`` (``name``: a ``contracts`` file name)."""
    return store.exports_dir() / name


def sales_long_path() -> Path:
    return store.assets_dir() / contracts.SALES_LONG_FILE


def calendar_path() -> Path:
    return store.assets_dir() / contracts.RAW_CALENDAR_FILE
