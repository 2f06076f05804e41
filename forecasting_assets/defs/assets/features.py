"""Dagster wiring of the feature table (the maths lives in ``forecasting_assets.features``)."""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from forecasting_assets.features import checks
from forecasting_assets.features.catalog import (
    CATALOG_FILE,
    build_catalog,
    catalog_markdown,
    write_catalog,
)
from forecasting_assets.features.config import FEATURES_VERSION, HORIZON, FeatureConfig
from forecasting_assets.features.pipeline import write_features
from forecasting_assets.settings import atomic_write, get_settings

GROUP = "features"


class FeaturesConfig(dg.Config):
    """Options of the feature table (defaults = the model's standard feature set)."""

    direct_lags: list[int] = Field(
        default_factory=lambda: list(range(HORIZON, HORIZON + 15)),
        description="Sales lags for the direct model (all >= the 28-day horizon).",
    )
    short_lags: list[int] = Field(
        default_factory=lambda: [1, 7, 14],
        description="Short lags for a recursive model (null where they would read the horizon).",
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
            short_lags=tuple(self.short_lags),
            windows=tuple(self.windows),
            encoding_cutoff_offset=self.encoding_cutoff_offset,
        )


def features_path() -> Path:
    """Where the table is stored: the IO manager's location for the ``features`` asset."""
    return get_settings().assets_dir / "features.parquet"


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    tags={"features_version": FEATURES_VERSION},
)
def features(
    context: dg.AssetExecutionContext, config: FeaturesConfig, sales_long: pl.LazyFrame
) -> dg.Output[dict[str, Any]]:
    """Model feature table, one row per series × day (history and the 28 horizon days).

    Families: sales lags 28–42 (direct model) and 1/7/14 (recursive mode; null where they would
    read the horizon), rolling means/stds over 7–180 days ending 28 days back, calendar, events,
    the state's SNAP flag, prices (change, momentum, relative to the item and its department),
    and leak-free target encodings (cutoff = last history day − 28). Built store by store and
    streamed to `features.parquet` (atomic write); rows before a series' first sale keep
    `is_launched = false` and must be dropped for training. The feature catalog (definitions
    and summary statistics) is written to `exports/feature_catalog.json` and shown here.
    """
    cfg = config.feature_config()
    path = features_path()
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
    catalog_path = get_settings().exports_dir / CATALOG_FILE
    with atomic_write(catalog_path) as tmp:
        write_catalog(catalog, tmp)
    context.log.info(
        "features: %d rows, %d columns in %.1fs -> %s",
        result.rows,
        len(dtypes),
        result.seconds,
        path,
    )
    summary = {
        "features_version": FEATURES_VERSION,
        "path": str(path),
        "catalog_path": str(catalog_path),
        "rows": result.rows,
        "encoding_cutoff_d": result.context.encoding_cutoff_d,
        "feature_columns_direct": catalog["feature_columns_direct"],
    }
    return dg.Output(
        summary,
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


def check_result(outcome: checks.CheckOutcome, *, warn: bool = False) -> dg.AssetCheckResult:
    """A feature-check outcome as a Dagster check result (ERROR, or WARN when ``warn``)."""
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        description=outcome.message[:2000],
        metadata=dict(outcome.metadata),
    )


def _table(features: pl.LazyFrame | pl.DataFrame | None) -> pl.LazyFrame:
    # The IO manager loads features.parquet (scan) for a LazyFrame-annotated input.
    if isinstance(features, pl.LazyFrame | pl.DataFrame):
        return features.lazy()
    return pl.scan_parquet(features_path())


@dg.asset_check(
    asset=features,
    blocking=True,
    additional_ins={"sales_long": dg.AssetIn("sales_long")},
    description="The table has the row count and rows per day of sales_long.",
)
def features_rows_match_sales_long(
    features: pl.LazyFrame, sales_long: pl.LazyFrame
) -> dg.AssetCheckResult:
    """Row count and rows per day (hence day range and series count) equal sales_long's."""
    return check_result(checks.check_rows_match(_table(features), sales_long.lazy()))


@dg.asset_check(
    asset=features,
    blocking=True,
    description="Horizon rows have every lag>=28 / rolling feature where history exists.",
)
def features_horizon_direct_inputs(features: pl.LazyFrame) -> dg.AssetCheckResult:
    """The direct model can score every horizon day of every launched series."""
    return check_result(checks.check_horizon_features(_table(features)))


@dg.asset_check(
    asset=features,
    description="All catalogued columns exist; no short lag is a direct-model input.",
)
def features_schema_complete(features: pl.LazyFrame) -> dg.AssetCheckResult:
    """Schema against the catalog (non-blocking warning)."""
    return check_result(checks.check_schema(_table(features)), warn=True)


FEATURE_CHECKS = [
    features_rows_match_sales_long,
    features_horizon_direct_inputs,
    features_schema_complete,
]
