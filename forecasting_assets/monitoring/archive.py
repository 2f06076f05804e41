"""The forecasts export and its archive: earlier forecasts kept for realized-accuracy scoring.

``<exports>/forecast_archive/<model_version>_<first date>.parquet`` is a copy of a forecasts
export; its ``.json`` sidecar records the backtest WRMSSE known when it was archived.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from forecasting_assets.contracts import BACKTEST_METRICS_FILE, FORECAST_ARCHIVE_DIR, FORECASTS_FILE
from forecasting_assets.settings import atomic_write, write_json

logger = logging.getLogger(__name__)


def read_forecasts(exports: Path) -> pl.DataFrame | None:
    """The forecasts export, or None when ``batch_forecasts`` has not written it yet."""
    path = exports / FORECASTS_FILE
    return pl.read_parquet(path) if path.exists() else None


def backtest_wrmsse(exports: Path, model: str) -> float | None:
    """Mean over folds of the backtest WRMSSE (level ``all``) of ``model``, if exported."""
    path = exports / BACKTEST_METRICS_FILE
    if not path.exists():
        return None
    rows = pl.read_parquet(path).filter((pl.col("model") == model) & (pl.col("level") == "all"))
    return float(rows["wrmsse"].mean()) if rows.height else None


def archive_forecasts(forecasts: pl.DataFrame, exports: Path, backtest_model: str) -> str:
    """Copy the forecasts export into the archive once; returns its key."""
    version = (
        str(forecasts["model_version"][0]) if "model_version" in forecasts.columns else "unknown"
    )
    key = f"{version}_{forecasts['date'].min()}".replace("/", "-")
    target = exports / FORECAST_ARCHIVE_DIR / f"{key}.parquet"
    if not target.exists():
        with atomic_write(target) as tmp:
            shutil.copyfile(exports / FORECASTS_FILE, tmp)
        write_json(
            target.with_suffix(".json"),
            {
                "key": key,
                "model_version": version,
                "first_date": forecasts["date"].min(),
                "last_date": forecasts["date"].max(),
                "archived_at": datetime.now(UTC).isoformat(),
                "backtest_model": backtest_model,
                "backtest_wrmsse": backtest_wrmsse(exports, backtest_model),
            },
        )
        logger.info("archived forecasts %s to %s", key, target)
    return key


def list_archives(exports: Path) -> list[dict[str, Any]]:
    """Archived forecasts (sidecar contents + ``path``), oldest first date first."""
    out = []
    for meta in sorted((exports / FORECAST_ARCHIVE_DIR).glob("*.json")):
        info = json.loads(meta.read_text())
        info["path"] = meta.with_suffix(".parquet")
        if info["path"].exists():
            out.append(info)
    return sorted(out, key=lambda i: (i["first_date"], i.get("archived_at", "")))
