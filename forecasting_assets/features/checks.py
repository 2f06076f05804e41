"""Pure invariants of the feature table (wrapped as Dagster asset checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from forecasting_assets.features.build import (
    TARGET,
    feature_columns,
    lag_name,
    last_history_day,
    output_columns,
    roll_names,
)
from forecasting_assets.features.config import FeatureConfig


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one invariant: passed, a message and small metadata."""

    passed: bool
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_rows_match(features: pl.LazyFrame, sales_long: pl.LazyFrame) -> CheckOutcome:
    """Every sales_long row is in the table exactly once (same rows, series and days)."""
    q = [
        lf.select(
            pl.len().alias("rows"),
            pl.col("id").n_unique().alias("series"),
            pl.col("d").min().alias("d_min"),
            pl.col("d").max().alias("d_max"),
        )
        for lf in (features, sales_long)
    ]
    got, want = (df.row(0, named=True) for df in pl.collect_all(q))
    passed = got == want
    msg = "features cover sales_long row for row" if passed else f"features {got} != {want}"
    return CheckOutcome(passed, msg, {"features": got, "sales_long": want})


def check_schema(features: pl.LazyFrame, cfg: FeatureConfig | None = None) -> CheckOutcome:
    """All expected columns exist and no direct-model input reads inside the horizon."""
    cfg = cfg or FeatureConfig()
    names = features.collect_schema().names()
    missing = [c for c in output_columns(cfg) if c not in names]
    short = [lag_name(k) for k in cfg.short_lags]
    leaking = [c for c in feature_columns(cfg, "direct") if c in short]
    passed = not missing and not leaking
    msg = "schema complete" if passed else f"missing columns {missing}; direct inputs {leaking}"
    return CheckOutcome(passed, msg, {"missing": missing, "short_lags_in_direct": leaking})


def check_horizon_features(
    features: pl.LazyFrame, cfg: FeatureConfig | None = None
) -> CheckOutcome:
    """On horizon rows, the direct lags and rolling means are non-null where history exists.

    A lag ``k`` on horizon day ``D`` reads day ``D-k <= origin``: it must be present whenever
    the series was launched by then (first sale ``<= D-k``). A rolling mean needs, in addition,
    its whole window inside the series' days.
    """
    cfg = cfg or FeatureConfig()
    last = last_history_day(features)
    launch = features.group_by("id").agg(
        pl.col("d").filter(pl.col("is_launched")).min().alias("_launch_d"),
        pl.col("d").min().alias("_first_d"),
    )
    horizon = features.filter(pl.col(TARGET).is_null() & (pl.col("d") > last)).join(
        launch, on="id", how="left"
    )
    d = pl.col("d").cast(pl.Int32)
    exprs = [
        (pl.col(lag_name(k)).is_null() & (d - k >= pl.col("_launch_d"))).sum().alias(lag_name(k))
        for k in cfg.direct_lags
    ]
    s = cfg.rolling_shift
    exprs += [
        (pl.col(roll_names(w, s)[0]).is_null()
         & (d - s >= pl.col("_launch_d"))
         & (d - pl.col("_first_d") >= s + w - 1)).sum().alias(roll_names(w, s)[0])
        for w in cfg.windows
    ]  # fmt: skip
    exprs.append(pl.len().alias("_rows"))
    row = horizon.select(exprs).collect().row(0, named=True)
    n_rows = row.pop("_rows")
    bad = {k: int(v) for k, v in row.items() if v}
    passed = n_rows > 0 and not bad
    msg = (
        f"{n_rows} horizon rows have every direct lag / rolling mean where history exists"
        if passed
        else f"horizon rows: {n_rows}; unexpected nulls per feature: {bad}"
    )
    return CheckOutcome(passed, msg, {"horizon_rows": n_rows, "unexpected_nulls": bad})
