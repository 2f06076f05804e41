"""Exports the pipeline writes, built from a small sales_long for tests and benchmarks."""

from pathlib import Path

import polars as pl


def write_fold_forecasts(home: Path, sales_long: pl.DataFrame, n_folds: int = 2) -> None:
    """``exports/backtest_forecasts.parquet`` of the last ``n_folds`` 28-day blocks of history: each series
    forecast flat at its mean of the 28 days before the fold."""
    hist = sales_long.filter(pl.col("sales").is_not_null())
    last = int(hist["d"].max())
    frames = []
    for k in range(1, n_folds + 1):
        start = last - (n_folds - k + 1) * 28 + 1
        level = (
            hist.filter(pl.col("d").is_between(start - 28, start - 1))
            .group_by("id")
            .agg(pl.col("sales").mean().alias("forecast"))
        )
        fold = hist.filter(pl.col("d").is_between(start, start + 27)).join(level, on="id")
        frames.append(fold.select(
            "id", pl.lit(k, pl.Int16).alias("fold"), pl.col("d").cast(pl.Int16),
            pl.col("forecast").cast(pl.Float32), pl.col("sales").cast(pl.Float32).alias("actual"),
        ))  # fmt: skip
    (home / "exports").mkdir(parents=True, exist_ok=True)
    pl.concat(frames).write_parquet(home / "exports" / "backtest_forecasts.parquet")
