"""Mean-target encodings of the store-level groups, computed only from days up to a cutoff.

Leakage rule: an encoding uses only training rows with ``d <= cutoff_d``, so modeling code
re-fits them at every backtest fold origin (:func:`add_target_encodings`).
"""

from __future__ import annotations

import polars as pl

from forecasting_assets.features.columns import TARGET, encoding_names, training_filter
from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.features.lookup import lookup


def encoding_stats(
    frame: pl.LazyFrame | pl.DataFrame, cutoff_d: int, cfg: FeatureConfig | None = None
) -> dict[str, pl.DataFrame]:
    """Per encoding: mean target of its group over training rows with ``d <= cutoff_d``.

    One group-by over the union of all key columns (sums and counts), then each encoding
    re-aggregates that small table: exact, and one pass over the rows instead of one per key.
    """
    cfg = cfg or FeatureConfig()
    union = list(dict.fromkeys(k for keys in cfg.encoding_keys.values() for k in keys))
    train = frame.lazy().filter(training_filter() & (pl.col("d") <= cutoff_d))
    base = (
        train.group_by(union)
        .agg(pl.col(TARGET).cast(pl.Int64).sum().alias("_sum"), pl.len().alias("_n"))
        .collect()
    )
    out = {}
    for name, keys in cfg.encoding_keys.items():
        out[name] = base.group_by(list(keys)).agg(
            (pl.col("_sum").sum() / pl.col("_n").sum()).cast(pl.Float32).alias(name)
        )
    return out


def add_target_encodings(
    features: pl.LazyFrame | pl.DataFrame,
    cutoff_d: int,
    cfg: FeatureConfig | None = None,
    source: pl.LazyFrame | pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """(Re)compute the mean-target encodings from training rows with ``d <= cutoff_d`` only (of
    ``source`` if given, e.g. the whole window when ``features`` holds only the rows to forecast).

    Each encoding is the mean of ``sales`` over launched rows of its group (``cfg.encoding_keys``,
    all within a store) up to the cutoff; null for groups without such rows. Existing encoding
    columns are replaced, so modeling code can call this once per backtest fold. The group means
    are computed now (one pass over ``features``); the returned frame is lazy.
    """
    cfg = cfg or FeatureConfig()
    lf = features.lazy()
    names = encoding_names(cfg)
    stats = encoding_stats(lf if source is None else source, cutoff_d, cfg)
    lf = lf.drop([n for n in names if n in lf.collect_schema().names()])
    for name, keys in cfg.encoding_keys.items():
        lf = lookup(lf, stats[name], keys, [name])
    return lf
