"""Names of the feature table: its keys, target and feature columns, and the training rows.

One home for the layout every other module reads (builders, catalog, checks, the model's inputs,
drift): change a column here and everything that lists columns follows.
"""

from __future__ import annotations

import polars as pl

from forecasting_assets.features.config import FeatureConfig

ID_COLS: tuple[str, ...] = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
KEY_COLS: tuple[str, ...] = (*ID_COLS, "d", "date", "wm_yr_wk")
TARGET = "sales"
INPUT_COLS: tuple[str, ...] = (*KEY_COLS, "snap", "sell_price", TARGET, "is_launched")

CALENDAR_FEATURES: tuple[str, ...] = (
    "day_of_week", "day_of_month", "week_of_year", "month", "quarter", "year",
    "is_weekend", "is_month_start", "is_month_end",
)  # fmt: skip
EVENT_FEATURES: tuple[str, ...] = (
    "has_event", "event_type_1_code", "event_name_1_code", "event_type_2_code",
    "days_to_next_event", "days_since_prev_event",
)  # fmt: skip
PRICE_FEATURES: tuple[str, ...] = (
    "sell_price", "price_change_1w", "price_momentum_4w", "price_momentum_year",
    "price_rel_item", "price_rel_dept", "price_n_unique", "price_min", "price_max", "price_std",
)  # fmt: skip


def lag_name(k: int) -> str:
    """Column name of the sales lag ``k``."""
    return f"sales_lag_{k}"


def roll_names(w: int, shift: int) -> tuple[str, str]:
    """Column names (mean, std) of the ``w``-day rolling window ending at lag ``shift``."""
    return f"sales_rmean_{shift}_{w}", f"sales_rstd_{shift}_{w}"


def encoding_names(cfg: FeatureConfig) -> list[str]:
    """Names of the target-encoding columns."""
    return list(cfg.encoding_keys)


def training_filter() -> pl.Expr:
    """Rows a model may train on: launched (on/after the first sale) and with a known target.

    Rows before a series' first sale are leading zeros, not demand: ``df.filter(training_filter())``.
    """
    return pl.col("is_launched") & pl.col(TARGET).is_not_null()


def output_columns(cfg: FeatureConfig | None = None) -> list[str]:
    """All columns of the feature table, in order (keys, target, launch flag, features)."""
    cfg = cfg or FeatureConfig()
    return [*KEY_COLS, TARGET, "is_launched", *feature_columns(cfg, include_ids=False)]


def categorical_columns() -> list[str]:
    """Model inputs that are categorical (Enum ids and small-int event codes)."""
    return [
        "item_id", "dept_id", "cat_id", "store_id", "state_id",
        "event_type_1_code", "event_name_1_code", "event_type_2_code",
    ]  # fmt: skip


def feature_columns(
    cfg: FeatureConfig | None = None, mode: str = "direct", *, include_ids: bool = True
) -> list[str]:
    """Model input columns of the table.

    Lags >= horizon, rolling windows ending at the horizon, calendar, events, SNAP, prices,
    target encodings; ``include_ids`` adds the categorical hierarchy ids (item, dept, cat,
    store, state). ``mode`` is ``"direct"``, the only mode of the table.
    """
    cfg = cfg or FeatureConfig()
    if mode != "direct":
        raise ValueError(f"mode must be 'direct', not {mode!r}")
    cols = [lag_name(k) for k in cfg.direct_lags]
    cols += [c for w in cfg.windows for c in roll_names(w, cfg.rolling_shift)]
    cols += [*CALENDAR_FEATURES, *EVENT_FEATURES, "snap", *PRICE_FEATURES, *encoding_names(cfg)]
    if include_ids:
        cols = ["item_id", "dept_id", "cat_id", "store_id", "state_id", *cols]
    return cols
