"""Pure invariants of the feature table (wrapped as Dagster asset checks)."""

from __future__ import annotations

from typing import Any

import polars as pl

from forecasting_assets.contracts import CheckOutcome
from forecasting_assets.features.columns import TARGET, lag_name, output_columns, roll_names
from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.m5.transform import last_history_day


def check_rows_match(features: pl.LazyFrame, sales_long: pl.LazyFrame) -> CheckOutcome:
    """Every sales_long row is in the table exactly once: same row count and rows per day.

    Reads only ``d`` (the id column's Enum decoding cost ~6 CPU-seconds per 60M rows): equal
    per-day row counts imply the same day range, and ``series`` is the busiest day's count.
    """
    q = [lf.group_by("d").agg(pl.len().alias("rows")).sort("d") for lf in (features, sales_long)]
    got_days, want_days = pl.collect_all(q)

    def summary(days: pl.DataFrame) -> dict[str, Any]:
        return {
            "rows": int(days["rows"].sum()),
            "series": int(days["rows"].max() or 0),
            "d_min": days["d"].min(),
            "d_max": days["d"].max(),
        }

    got, want = summary(got_days), summary(want_days)
    passed = got == want and got_days.equals(want_days)
    msg = "features cover sales_long row for row" if passed else f"features {got} != {want}"
    if passed is False and got == want:
        msg = f"features {got}: same totals as sales_long but different rows per day"
    return CheckOutcome(passed, msg, {"features": got, "sales_long": want})


def check_schema(features: pl.LazyFrame, cfg: FeatureConfig | None = None) -> CheckOutcome:
    """All catalogued columns exist (every lag is >= the horizon by :class:`FeatureConfig`)."""
    cfg = cfg or FeatureConfig()
    names = features.collect_schema().names()
    missing = [c for c in output_columns(cfg) if c not in names]
    msg = "schema complete" if not missing else f"missing columns {missing}"
    return CheckOutcome(not missing, msg, {"missing": missing})


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
    s = cfg.rolling_shift
    # Only days >= lo can be read by a horizon row (d - k, or a window's first day d-s-w+1).
    # Launch and first days are clipped at lo, which leaves every comparison below unchanged
    # (is_launched is monotone within a series), so the check reads ~1/8 of the table's rows.
    lo = last + 1 - max(max(cfg.direct_lags), s + max(cfg.windows) - 1)
    # Series key (item, store) = id; decoding the 30k-category id Enum costs ~10x more.
    key = ["item_id", "store_id"]
    cols = [*key, "d", "is_launched", TARGET, *(lag_name(k) for k in cfg.direct_lags)]
    cols += [roll_names(w, s)[0] for w in cfg.windows]
    recent = features.select(cols).filter(pl.col("d") >= lo).collect().lazy()  # one scan
    launch = recent.group_by(key).agg(
        pl.col("d").filter(pl.col("is_launched")).min().alias("_launch_d"),
        pl.col("d").min().alias("_first_d"),
    )
    horizon = recent.filter(pl.col(TARGET).is_null() & (pl.col("d") > last)).join(
        launch, on=key, how="left"
    )
    d = pl.col("d").cast(pl.Int32)
    exprs = [
        (pl.col(lag_name(k)).is_null() & (d - k >= pl.col("_launch_d"))).sum().alias(lag_name(k))
        for k in cfg.direct_lags
    ]
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
