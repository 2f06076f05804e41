"""What the model reads from the feature table: its columns, categoricals and per-fold encoder."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from forecasting_assets.features.columns import categorical_columns, feature_columns
from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.features.encodings import add_target_encodings

UNUSED_COLUMNS: frozenset[str] = frozenset({"item_id"})
"""Feature-table columns the model skips: ``item_id`` (3,049 levels) is slow as a LightGBM
categorical and was no better than the item x store target encodings on the real M5 subset."""


@dataclass(frozen=True)
class ModelInputs:
    """The model's input columns and the target encoder it re-fits at every fold origin."""

    config: FeatureConfig = field(default_factory=FeatureConfig)

    @property
    def feature_columns(self) -> list[str]:
        """Feature-table columns the model reads (the recursive part adds its recent means)."""
        return [c for c in feature_columns(self.config) if c not in UNUSED_COLUMNS]

    @property
    def categorical_columns(self) -> list[str]:
        """Inputs LightGBM treats as categorical."""
        return [c for c in categorical_columns() if c not in UNUSED_COLUMNS]

    @property
    def encoding_keys(self) -> list[str]:
        """Columns the target encodings group by (read with the features)."""
        return sorted({k for ks in self.config.encoding_keys.values() for k in ks})

    def encode(
        self, frame: pl.DataFrame, cutoff_d: int, source: pl.LazyFrame | None = None
    ) -> pl.DataFrame:
        """``frame`` with its target encodings recomputed from days ``<= cutoff_d`` (of ``source``,
        default ``frame`` itself)."""
        return add_target_encodings(frame, cutoff_d, self.config, source).collect()
