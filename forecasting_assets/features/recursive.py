"""Short lags for a recursive model, recomputed day by day while forecasting.

In the stored table the short lags (``< horizon``) are null where they would read a horizon day.
A recursive forecaster predicts day ``origin+1``, writes the predictions into the sales history,
calls :func:`short_lags_for_day` for ``origin+2`` and so on.
"""

from __future__ import annotations

import polars as pl

from forecasting_assets.features.build import lag_name
from forecasting_assets.features.config import FeatureConfig


def short_lags_for_day(
    history: pl.DataFrame | pl.LazyFrame, day: int, cfg: FeatureConfig | None = None
) -> pl.DataFrame:
    """Short-lag features of every series for day ``day``.

    ``history``: ``id, d, sales`` (actuals, and predictions for the horizon days already
    forecast), optionally ``is_launched`` (sales before launch count as missing, as in the
    stored table). Returns ``id, d, sales_lag_<k>...`` (Float32, null where day-k is missing),
    one row per series in ``history``.
    """
    cfg = cfg or FeatureConfig()
    lf = history.lazy()
    names = lf.collect_schema().names()
    y = pl.col("sales").cast(pl.Float32)
    if "is_launched" in names:
        y = pl.when(pl.col("is_launched")).then(y)
    wanted = [day - k for k in cfg.short_lags]
    src = lf.filter(pl.col("d").is_in(wanted)).select("id", "d", y.alias("_y"))
    out = lf.select(pl.col("id").unique(maintain_order=True)).with_columns(
        pl.lit(day, dtype=pl.Int16).alias("d")
    )
    for k in cfg.short_lags:
        lag = src.filter(pl.col("d") == day - k).select("id", pl.col("_y").alias(lag_name(k)))
        out = out.join(lag, on="id", how="left", maintain_order="left")
    return out.collect()


def fill_short_lags(
    features: pl.DataFrame,
    history: pl.DataFrame | pl.LazyFrame,
    day: int,
    cfg: FeatureConfig | None = None,
) -> pl.DataFrame:
    """``features`` with the short lags of the rows of ``day`` recomputed from ``history``.

    Short-lag columns become Float32 (predictions are fractional).
    """
    cfg = cfg or FeatureConfig()
    cols = [lag_name(k) for k in cfg.short_lags]
    lags = short_lags_for_day(history, day, cfg)
    base = features.with_columns(pl.col(cols).cast(pl.Float32))
    lags = lags.with_columns(pl.col("d").cast(base.schema["d"]))
    return base.update(lags, on=["id", "d"], how="left", include_nulls=True)
