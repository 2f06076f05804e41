"""Seeded generator of M5-shaped sample data: ``calendar.csv``, ``sales_train_evaluation.csv``
and ``sell_prices.csv`` with the exact Kaggle M5 columns, id formats, ``d_N`` numbering and
Walmart week keys.

The calendar follows the real M5 rules (:mod:`~forecasting_assets.m5.sample_calendar`); items,
prices and daily sales come from the demand model (:mod:`~forecasting_assets.m5.sample_demand`),
one seeded random stream per store. This module sizes the data set, assembles the three tables
and writes them atomically; the same arguments give byte-identical files.

CLI: ``python -m forecasting_assets.m5.generator --out data/raw [--demo] [--stores N]
[--items-per-dept N] [--days N] [--seed N] [--gzip]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from forecasting_assets.contracts import HORIZON
from forecasting_assets.m5.readers import FILE_CANDIDATES
from forecasting_assets.m5.sample_calendar import make_calendar
from forecasting_assets.m5.sample_demand import (
    CATEGORIES,
    DEPARTMENTS,
    STORES,
    calendar_arrays,
    make_items,
    store_prices,
    store_sales,
)
from forecasting_assets.settings import atomic_write

logger = logging.getLogger(__name__)

FILE_NAMES: dict[str, str] = {table: names[0] for table, names in FILE_CANDIDATES.items()}
"""The file written per table: the first name the readers accept."""


@dataclass(frozen=True)
class SampleSize:
    """Size arguments of :func:`generate_m5`."""

    n_stores: int = 10
    items_per_dept: int | None = None
    n_days: int = 1941

    def kwargs(self) -> dict[str, int | None]:
        """The size as keyword arguments for :func:`generate_m5`."""
        return asdict(self)


FULL_SIZE = SampleSize()
"""The real M5 size: 10 stores, 3,049 items (30,490 series), 1,941 days."""
DEMO = SampleSize(n_stores=10, items_per_dept=5, n_days=1000)
"""Default demo size: all 3 states and 10 stores (so SNAP, state/store levels and the 12 WRMSSE
levels are all meaningful), 35 items -> 350 series, 1,000 days (+28 horizon): ~360k long rows,
enough history for yearly lags and several 28-day backtest folds, small enough for minutes."""
DEMO_SIZE: dict[str, int | None] = DEMO.kwargs()


def _write_csv(df: pl.DataFrame, path: Path, compress: bool) -> None:
    with atomic_write(path) as tmp:
        df.write_csv(
            tmp,
            compression="gzip" if compress else "uncompressed",
            check_extension=False,
            date_format="%Y-%m-%d",
        )


def generate_m5(
    out_dir: Path,
    *,
    n_stores: int = 10,
    items_per_dept: int | None = None,
    n_days: int = 1941,
    seed: int = 0,
    compress: bool = False,
) -> dict[str, Path]:
    """Write M5-shaped ``calendar``, ``sales`` and ``prices`` CSV files into ``out_dir``.

    Args:
        out_dir: folder to write into (created if missing).
        n_stores: the first ``n_stores`` of CA_1..CA_4, TX_1..TX_3, WI_1..WI_3 (1-10).
        items_per_dept: items in each of the 7 departments; None = the real M5 counts (3,049).
        n_days: sales days (d_1 = 2011-01-29); calendar and prices cover 28 more days.
        seed: random seed; the same arguments give byte-identical files.
        compress: write ``.csv.gz`` files instead of ``.csv``.

    Returns:
        The written paths by name: ``{"calendar": ..., "sales": ..., "prices": ...}``.
    """
    if not 1 <= n_stores <= len(STORES):
        raise ValueError(f"n_stores must be in 1..{len(STORES)}, got {n_stores}")
    if items_per_dept is not None and items_per_dept < 1:
        raise ValueError(f"items_per_dept must be >= 1 or None, got {items_per_dept}")
    if n_days < 1:
        raise ValueError(f"n_days must be >= 1, got {n_days}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    paths = {key: out_dir / f"{name}{suffix}" for key, name in FILE_NAMES.items()}

    calendar = make_calendar(n_days + HORIZON)
    cal = calendar_arrays(calendar, n_days)
    seeds = np.random.SeedSequence(seed).spawn(1 + len(STORES))
    n_hist_weeks = int(cal.week_index[n_days - 1]) + 1
    items = make_items(np.random.default_rng(seeds[0]), items_per_dept, cal.n_weeks, n_hist_weeks)
    stores = STORES[:n_stores]
    n_items = items.item_id.size
    logger.info(
        "generating M5 sample: stores=%d items=%d series=%d days=%d seed=%d out=%s",
        n_stores, n_items, n_items * n_stores, n_days, seed, out_dir,
    )  # fmt: skip

    sales_t = np.empty((n_days, n_items * n_stores), dtype=np.int32)  # day-major for columns
    price_parts: list[pl.DataFrame] = []
    store_names = pl.Series("store_id", stores, dtype=pl.String)
    item_names = pl.Series("item_id", items.item_id, dtype=pl.String)
    week_keys = pl.Series("wm_yr_wk", cal.week_keys, dtype=pl.Int16)
    for s, store in enumerate(stores):
        rng = np.random.default_rng(seeds[1 + s])
        # Launched items open in each store within a few weeks of each other.
        jitter = np.where(items.launch_week > 0, rng.integers(0, 5, size=n_items), 0)
        launch_week = np.minimum(items.launch_week + jitter, n_hist_weeks - 1)
        cents, regular = store_prices(rng, items, launch_week)
        launch_day = np.where(launch_week > 0, np.searchsorted(cal.week_index, launch_week), 0)
        block = store_sales(rng, items, store, cal, cents, regular, launch_day)
        sales_t[:, s * n_items : (s + 1) * n_items] = block.T
        item_idx, week_idx = np.nonzero(cents)
        price_parts.append(
            pl.DataFrame(
                [
                    store_names.gather(np.full(item_idx.size, s)),
                    item_names.gather(item_idx),
                    week_keys.gather(week_idx),
                    pl.Series("sell_price", cents[item_idx, week_idx] / 100.0),
                ]
            )
        )
        del block, cents, regular

    store_idx = np.repeat(np.arange(n_stores), n_items)
    item_idx = np.tile(np.arange(n_items), n_stores)
    item_col = item_names.gather(item_idx)
    store_col = store_names.gather(store_idx)
    dept_names = pl.Series("dept_id", [d for d, _ in DEPARTMENTS]).gather(items.dept[item_idx])
    cat_names = pl.Series("cat_id", CATEGORIES).gather(items.cat[item_idx])
    ids = pl.DataFrame([item_col, dept_names, cat_names, store_col]).select(
        (pl.col("item_id") + "_" + pl.col("store_id") + "_evaluation").alias("id"),
        "item_id",
        "dept_id",
        "cat_id",
        "store_id",
        pl.col("store_id").str.slice(0, 2).alias("state_id"),
    )
    day_cols = [pl.Series(f"d_{j + 1}", sales_t[j]) for j in range(n_days)]
    sales = pl.concat([ids, pl.DataFrame(day_cols)], how="horizontal")
    del day_cols
    _write_csv(calendar, paths["calendar"], compress)
    _write_csv(sales, paths["sales"], compress)
    del sales
    _write_csv(pl.concat(price_parts), paths["prices"], compress)
    logger.info(
        "wrote M5 sample in %.1fs: %s",
        time.perf_counter() - started,
        ", ".join(f"{k}={p.name}" for k, p in paths.items()),
    )
    return paths


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: ``python -m forecasting_assets.m5.generator --out data/raw``."""
    parser = argparse.ArgumentParser(description="Write M5-shaped sample data (seeded).")
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder")
    parser.add_argument("--demo", action="store_true", help=f"use the demo size {DEMO_SIZE}")
    parser.add_argument("--stores", type=int, default=None, help="number of stores (1-10)")
    parser.add_argument("--items-per-dept", type=int, default=None, help="items per department")
    parser.add_argument("--days", type=int, default=None, help="sales days (default 1941)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    size = DEMO if args.demo else FULL_SIZE
    paths = generate_m5(
        args.out,
        n_stores=args.stores if args.stores is not None else size.n_stores,
        items_per_dept=args.items_per_dept
        if args.items_per_dept is not None
        else size.items_per_dept,
        n_days=args.days if args.days is not None else size.n_days,
        seed=args.seed,
        compress=args.gzip,
    )
    for name, path in paths.items():
        logger.info("%s: %s (%.1f MB)", name, path, path.stat().st_size / 1e6)


if __name__ == "__main__":
    main()
