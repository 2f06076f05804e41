"""The Dagster code location: every asset, check, job, schedule, sensor and resource."""

from __future__ import annotations

import dagster as dg

from forecasting_assets.defs.assets import ingest
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.resources import M5Source

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest]),
    asset_checks=[],
    resources={
        "io_manager": AtomicParquetIOManager(),
        "m5_source": M5Source(),
    },
    executor=dg.in_process_executor,
)
