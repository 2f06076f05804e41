"""IO manager: polars frames as Parquet, dicts as JSON, under ``FORECASTING_HOME/assets``.

It owns the asset files: ``<base_dir>/<asset key>.parquet``, or ``<base_dir>/<asset key>/
<partition>.parquet`` for a partition (:meth:`AtomicParquetIOManager.asset_path`). An asset that
streams its own Parquet (``features``, too large to return as a frame) writes to that path with
:func:`forecasting_assets.settings.atomic_write` and returns a ``MaterializeResult``; downstream
assets then load it like any other.

Every write goes to a temporary file that is renamed into place only once complete, so a
failed or killed run never leaves a half-written file where readers (the next run, the API,
the dashboard) look.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from forecasting_assets.settings import atomic_write, get_settings

EXTENSIONS = (".parquet", ".json", ".pkl")


class AtomicParquetIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs as files named after the asset key (one file per partition)."""

    base_dir: str | None = None
    """Folder for the files; defaults to ``$FORECASTING_HOME/assets``."""

    def asset_path(
        self, key: dg.AssetKey | str, partition: str | None = None, suffix: str = ".parquet"
    ) -> Path:
        """The file of asset ``key`` (of one of its partitions), where this IO manager keeps it."""
        key = dg.AssetKey.from_coercible(key)
        base = Path(self.base_dir) if self.base_dir else get_settings().assets_dir
        stem = base.joinpath(*key.path)
        stem = stem / partition if partition else stem
        return stem.with_name(stem.name + suffix)

    def _path(self, context: dg.OutputContext | dg.InputContext, suffix: str) -> Path:
        partition = None
        if context.has_asset_partitions and len(context.asset_partition_keys) == 1:
            partition = context.asset_partition_keys[0]
        return self.asset_path(context.asset_key, partition, suffix)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if isinstance(obj, pl.LazyFrame | pl.DataFrame):
            path = self._path(context, ".parquet")
            with atomic_write(path) as tmp:
                if isinstance(obj, pl.LazyFrame):
                    obj.sink_parquet(tmp)
                else:
                    obj.write_parquet(tmp)
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
            context.add_output_metadata({"path": str(path), "rows": rows})
            return
        if isinstance(obj, dict | list):
            path = self._path(context, ".json")
            with atomic_write(path) as tmp:
                tmp.write_text(json.dumps(obj, indent=2, default=str))
        else:
            path = self._path(context, ".pkl")
            with atomic_write(path) as tmp, open(tmp, "wb") as fh:
                pickle.dump(obj, fh)
        context.add_output_metadata({"path": str(path)})

    def load_input(self, context: dg.InputContext) -> Any:
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            return self._load_partitions(context)
        for ext in EXTENSIONS:
            path = self._path(context, ext)
            if path.exists():
                return _load(path, context.dagster_type.typing_type)
        raise FileNotFoundError(
            f"Asset {context.asset_key.to_user_string()} has not been materialized yet "
            f"(no {self._path(context, '')}.parquet/.json/.pkl): materialize it first."
        )

    def _load_partitions(self, context: dg.InputContext) -> Any:
        paths = [self.asset_path(context.asset_key, key) for key in context.asset_partition_keys]
        lazy = pl.scan_parquet(paths)
        return lazy if context.dagster_type.typing_type is pl.LazyFrame else lazy.collect()


def _load(path: Path, typing_type: Any) -> Any:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path) if typing_type is pl.LazyFrame else pl.read_parquet(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with open(path, "rb") as fh:
        return pickle.load(fh)
