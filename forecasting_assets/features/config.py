"""Feature configuration: which lags, windows and encodings the feature table holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from forecasting_assets.contracts import HORIZON

FEATURES_VERSION = "1.1.0"
"""Version of the feature table as a whole; bump it when any feature definition changes."""


@dataclass(frozen=True)
class FeatureConfig:
    """Lags, rolling windows and encodings of the feature table.

    * ``direct_lags`` – sales lags usable by a direct 28-day model (all >= ``horizon``); the
      recursive model computes its recent-sales features itself
      (:mod:`forecasting_assets.modeling.recent`).
    * ``windows`` – rolling mean/std window lengths (days); each window ends at lag
      ``rolling_shift`` (``horizon`` by default), i.e. uses only sales known at the forecast origin.
    * ``encoding_cutoff_offset`` – the stored table's target encodings use days
      ``d <= last_history_d - encoding_cutoff_offset`` only (the last fold stays unseen).
    """

    horizon: int = HORIZON
    direct_lags: tuple[int, ...] = (28, 29, 30, 35, 42)
    windows: tuple[int, ...] = (7, 14, 28, 90, 180)
    rolling_shift: int = HORIZON
    encoding_cutoff_offset: int = HORIZON
    encoding_keys: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "te_item_store": ("id",),
            "te_item_store_dow": ("id", "day_of_week"),
            "te_store_dept": ("store_id", "dept_id"),
        }
    )

    def __post_init__(self) -> None:
        if any(lag < self.horizon for lag in self.direct_lags):
            raise ValueError(f"direct_lags must all be >= horizon={self.horizon}")
        if self.rolling_shift < self.horizon:
            raise ValueError("rolling_shift below the horizon would read unknown sales")
        if any(w < 2 for w in self.windows):
            raise ValueError("windows must be >= 2 days")
        for keys in self.encoding_keys.values():
            if "store_id" not in keys and "id" not in keys:
                # Keys without the store cross stores: the table could no longer be built per store.
                raise ValueError(
                    f"encoding keys {keys} must include store_id or id (per-store safety)"
                )
