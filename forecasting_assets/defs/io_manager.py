"""IO manager: polars frames as Parquet, dicts as JSON, under ``FORECASTING_HOME/assets``.

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

    def _stem(self, context: dg.OutputContext | dg.InputContext) -> Path:
        base = Path(self.base_dir) if self.base_dir else get_settings().assets_dir
        stem = base.joinpath(*context.asset_key.path)
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) == 1:
                return stem / keys[0]
        return stem

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        stem = self._stem(context)
        if isinstance(obj, pl.LazyFrame | pl.DataFrame):
            path = stem.with_suffix(".parquet")
            with atomic_write(path) as tmp:
                if isinstance(obj, pl.LazyFrame):
                    obj.sink_parquet(tmp)
                else:
                    obj.write_parquet(tmp)
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
            context.add_output_metadata({"path": str(path), "rows": rows})
            return
        if isinstance(obj, dict | list):
            path = stem.with_suffix(".json")
            with atomic_write(path) as tmp:
                tmp.write_text(json.dumps(obj, indent=2, default=str))
        else:
            path = stem.with_suffix(".pkl")
            with atomic_write(path) as tmp, open(tmp, "wb") as fh:
                pickle.dump(obj, fh)
        context.add_output_metadata({"path": str(path)})

    def load_input(self, context: dg.InputContext) -> Any:
        stem = self._stem(context)
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            return self._load_partitions(context, stem)
        for ext in EXTENSIONS:
            path = stem.with_suffix(ext)
            if path.exists():
                return _load(path, context.dagster_type.typing_type)
        raise FileNotFoundError(
            f"Asset {context.asset_key.to_user_string()} has not been materialized yet "
            f"(no {stem}.parquet/.json/.pkl): materialize it first."
        )

    def _load_partitions(self, context: dg.InputContext, stem: Path) -> Any:
        paths = [stem / f"{key}.parquet" for key in context.asset_partition_keys]
        lazy = pl.scan_parquet(paths)
        return lazy if context.dagster_type.typing_type is pl.LazyFrame else lazy.collect()


def _load(path: Path, typing_type: Any) -> Any:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path) if typing_type is pl.LazyFrame else pl.read_parquet(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with open(path, "rb") as fh:
        return pickle.load(fh)
