"""Resources: where the raw M5 files come from and where the pipeline writes.

The code location configures them from the environment with ``dg.EnvVar`` (``M5_RAW_DIR``,
``FORECASTING_HOME``; see :data:`defs`), so the UI shows where each value comes from. A field
left unset falls back to the documented default, read when the resource is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg

from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.m5.generator import DEMO_SIZE, generate_m5
from forecasting_assets.m5.readers import find_m5_files, require_m5_file
from forecasting_assets.settings import get_settings

log = logging.getLogger(__name__)


class M5Source(dg.ConfigurableResource):
    """The folder holding ``calendar.csv``, ``sales_train_*.csv`` and ``sell_prices.csv``.

    When the folder holds none of them and ``generate_if_empty`` is set, M5-shaped sample data
    of the configured size is generated there first (seeded, so every run gets the same data).
    """

    raw_dir: str | None = None
    """Defaults to ``$M5_RAW_DIR`` (``data/raw``)."""
    generate_if_empty: bool = True
    sample_stores: int = DEMO_SIZE["n_stores"]
    sample_items_per_dept: int = DEMO_SIZE["items_per_dept"]
    sample_days: int = DEMO_SIZE["n_days"]
    sample_seed: int = 42

    @property
    def folder(self) -> Path:
        return Path(self.raw_dir).resolve() if self.raw_dir else get_settings().raw_dir

    def path_of(self, table: str) -> Path:
        """Path of ``table``'s file (calendar/sales/prices), generating samples if allowed."""
        folder = self.folder
        if self.generate_if_empty and not any(find_m5_files(folder).values()):
            log.warning(
                "No M5 files in %s: generating sample data (%d stores, %d items/dept, %d days)",
                folder,
                self.sample_stores,
                self.sample_items_per_dept,
                self.sample_days,
            )
            generate_m5(
                folder,
                n_stores=self.sample_stores,
                items_per_dept=self.sample_items_per_dept,
                n_days=self.sample_days,
                seed=self.sample_seed,
            )
        return require_m5_file(folder, table)


class PipelineHome(dg.ConfigurableResource):
    """``FORECASTING_HOME``: the root of everything the pipeline writes."""

    home: str | None = None
    """Defaults to ``$FORECASTING_HOME`` (``data``)."""

    @property
    def root(self) -> Path:
        return Path(self.home).expanduser().resolve() if self.home else get_settings().home

    @property
    def exports_dir(self) -> Path:
        """User-facing exports (forecasts, drift report, inventory plan, ...)."""
        return self.root / "exports"


def from_env(name: str) -> dg.EnvVar | None:
    """``dg.EnvVar(name)`` when the variable is set, else None (the field's default applies:
    ``dg.EnvVar`` has no default and would make an unset variable a config error)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


defs = dg.Definitions(
    resources={
        "io_manager": AtomicParquetIOManager(),
        "m5_source": M5Source(raw_dir=from_env("M5_RAW_DIR")),
        "home": PipelineHome(home=from_env("FORECASTING_HOME")),
        "mlflow": MLflowResource(),
    }
)
