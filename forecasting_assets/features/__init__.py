"""Feature table for the demand model (pure polars, no Dagster).

Typical use::

    from forecasting_assets.features import FeatureConfig, build_features, feature_columns
    table = build_features(sales_long)                     # small data, in memory
    write_features(sales_long, "features.parquet")         # full M5, store by store, streaming
    X = table.filter(training_filter()).select(feature_columns())
    fold = add_target_encodings(table, cutoff_d=1885)      # encodings without leakage per fold
"""

from forecasting_assets.features.build import FeatureContext, build_features, feature_context
from forecasting_assets.features.calendar import calendar_features
from forecasting_assets.features.catalog import build_catalog, feature_specs
from forecasting_assets.features.columns import (
    categorical_columns,
    feature_columns,
    output_columns,
    training_filter,
)
from forecasting_assets.features.config import FEATURES_VERSION, FeatureConfig
from forecasting_assets.features.encodings import add_target_encodings
from forecasting_assets.features.pipeline import features_lazy, iter_feature_batches, write_features

__all__ = [
    "FEATURES_VERSION",
    "FeatureConfig",
    "FeatureContext",
    "add_target_encodings",
    "build_catalog",
    "build_features",
    "calendar_features",
    "categorical_columns",
    "feature_columns",
    "feature_context",
    "feature_specs",
    "features_lazy",
    "iter_feature_batches",
    "output_columns",
    "training_filter",
    "write_features",
]
