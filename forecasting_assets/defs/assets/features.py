"""Dagster wiring of the feature table (the maths lives in ``forecasting_assets.features``)."""

import json

import dagster as dg
import polars as pl
from pydantic import Field

from forecasting_assets.contracts import FEATURE_CATALOG_FILE, HORIZON
from forecasting_assets.defs.io_manager import AtomicParquetIOManager
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.features.catalog import build_catalog, catalog_markdown, write_catalog
from forecasting_assets.features.config import FEATURES_VERSION, FeatureConfig
from forecasting_assets.features.pipeline import write_features
from forecasting_assets.settings import atomic_write

GROUP = "features"


class FeaturesConfig(dg.Config):
    """Options of the feature table (defaults = the model's standard feature set)."""

    direct_lags: list[int] = Field(
        default_factory=lambda: list(range(HORIZON, HORIZON + 15)),
        description="Sales lags for the direct model (all >= the 28-day horizon).",
    )
    windows: list[int] = Field(
        default_factory=lambda: [7, 14, 28, 90, 180],
        description="Rolling mean/std windows (days), ending 28 days before the row's day.",
    )
    encoding_cutoff_offset: int = Field(
        default=HORIZON,
        description="Target encodings use days <= last history day - this offset.",
    )
    compression: str = Field(default="lz4", description="Parquet compression codec.")

    def feature_config(self) -> FeatureConfig:
        """The pure-code configuration."""
        return FeatureConfig(
            direct_lags=tuple(self.direct_lags),
            windows=tuple(self.windows),
            encoding_cutoff_offset=self.encoding_cutoff_offset,
        )


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    tags={"features_version": FEATURES_VERSION},
)
def features(
    context: dg.AssetExecutionContext,
    config: FeaturesConfig,
    sales_long: pl.LazyFrame,
    io_manager: dg.ResourceParam[AtomicParquetIOManager],
    home: PipelineHome,
) -> dg.MaterializeResult:
    """Model feature table, one row per series × day (history and the 28 horizon days).

    Families: sales lags 28–42, rolling means/stds over 7–180 days ending 28 days back,
    calendar, events, the state's SNAP flag, prices (change, momentum, relative to the item and
    its department), and leak-free target encodings (cutoff = last history day − 28). Built
    store by store and streamed (atomic write) to the IO manager's file of this asset,
    `assets/features.parquet`, from which downstream assets load it; rows before a series'
    first sale keep `is_launched = false` and must be dropped for training. The feature catalog
    (definitions and summary statistics) is written to `exports/feature_catalog.json` and shown
    here.
    """
    cfg = config.feature_config()
    path = io_manager.asset_path(context.asset_key)
    with atomic_write(path) as tmp:
        result = write_features(sales_long, tmp, cfg, compression=config.compression, isolated=True)
    dtypes = {k: str(v) for k, v in pl.scan_parquet(path).collect_schema().items()}
    catalog = build_catalog(
        cfg,
        result.stats,
        rows=result.rows,
        last_history_d=result.context.last_history_d,
        encoding_cutoff_d=result.context.encoding_cutoff_d,
        dtypes=dtypes,
    )
    catalog_path = home.exports_dir / FEATURE_CATALOG_FILE
    with atomic_write(catalog_path) as tmp:
        write_catalog(catalog, tmp)
    context.log.info(
        "features: %d rows, %d columns in %.1fs -> %s",
        result.rows,
        len(dtypes),
        result.seconds,
        path,
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "rows": result.rows,
            "columns": len(dtypes),
            "seconds": round(result.seconds, 1),
            "features_version": FEATURES_VERSION,
            "last_history_d": result.context.last_history_d,
            "encoding_cutoff_d": result.context.encoding_cutoff_d,
            "feature_catalog": dg.MetadataValue.json(json.loads(json.dumps(catalog, default=str))),
            "feature_catalog_table": dg.MetadataValue.md(catalog_markdown(catalog)),
        },
    )
