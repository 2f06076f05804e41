"""Paths and environment shared by the pipeline, the API and the dashboard.

Every part reads its locations from here so that they agree:

* ``M5_RAW_DIR`` – folder with the three M5 files (default ``data/raw``).
* ``FORECASTING_HOME`` – root of everything the pipeline writes (default ``data``).
* ``MLFLOW_TRACKING_URI`` – one MLflow store for all parts
  (default ``sqlite:///<absolute FORECASTING_HOME>/mlflow.db``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class Settings:
    """Resolved, absolute locations of the project's inputs and outputs."""

    raw_dir: Path
    home: Path
    mlflow_tracking_uri: str

    @property
    def assets_dir(self) -> Path:
        """Where the IO manager stores materialized assets."""
        return self.home / "assets"

    @property
    def exports_dir(self) -> Path:
        """User-facing exports (forecasts, drift report, inventory plan, ...)."""
        return self.home / "exports"


def get_settings() -> Settings:
    """Read the environment now (not at import) so tests and sensors see changes."""
    raw_dir = Path(os.environ.get("M5_RAW_DIR", "data/raw")).expanduser().resolve()
    home = Path(os.environ.get("FORECASTING_HOME", "data")).expanduser().resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    return Settings(raw_dir=raw_dir, home=home, mlflow_tracking_uri=uri)


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it over ``path`` only on success.

    Readers never see a half-written file: either the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, dates -> ISO strings."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, date):
        return obj.isoformat()
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (made :func:`json_safe`) to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file so that readers see either the old or the complete new file."""
    with atomic_write(path) as tmp:
        frame.write_parquet(tmp)
