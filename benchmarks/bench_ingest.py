"""Ingest -> validate -> sales_long at full M5 scale, through the real Dagster assets.

    python benchmarks/bench_ingest.py                 # generate full-size data, 3 repeats
    python benchmarks/bench_ingest.py --raw-dir ../shared/m5 --repeats 3

Prints the median wall time and peak RSS of materializing raw_calendar, raw_sales, raw_prices
and sales_long (reading, pandera validation, the long grid, atomic Parquet writes), not
counting data generation. Targets (issue 2): <= 60 s and <= 6 GB on a 2-core, 24 GB machine.
"""

import argparse
import os
import tempfile
from pathlib import Path

from _measure import measure


def ingest(raw_dir: str, home: str) -> int:
    import dagster as dg

    from forecasting_assets.defs.assets import ingest as assets
    from forecasting_assets.defs.io_manager import AtomicParquetIOManager
    from forecasting_assets.defs.resources import M5Source, PipelineHome

    os.environ["FORECASTING_HOME"] = home
    result = dg.materialize(
        [assets.raw_calendar, assets.raw_sales, assets.raw_prices, assets.sales_long],
        resources={
            "io_manager": AtomicParquetIOManager(),
            "m5_source": M5Source(raw_dir=raw_dir, generate_if_empty=False),
            "home": PipelineHome(),
        },
    )
    assert result.success
    import polars as pl

    return (
        pl.scan_parquet(Path(home) / "assets" / "sales_long.parquet")
        .select(pl.len())
        .collect()
        .item()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", help="existing M5 folder (default: generate full size)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        raw_dir = args.raw_dir
        if raw_dir is None:
            from forecasting_assets.m5.generator import generate_m5

            raw_dir = str(Path(work) / "raw")
            generate_m5(Path(raw_dir), seed=0)  # full M5 size: 10 stores, 3,049 items, 1,941 days
        figures = measure(
            ingest, str(Path(raw_dir).resolve()), str(Path(work) / "home"), repeats=args.repeats
        )
    rows = figures["result"]
    print(f"data: {raw_dir if args.raw_dir else 'generated full M5 size'}")
    print(f"sales_long rows: {rows:,}")
    print(
        f"ingest -> validate -> sales_long: median {figures['median_s']:.1f} s "
        f"(runs {', '.join(f'{w:.1f}' for w in figures['runs_s'])}), "
        f"peak RSS median {figures['median_peak_rss_gb']:.2f} GB, max {figures['max_peak_rss_gb']:.2f} GB, "
        f"{rows / figures['median_s'] / 1e6:.2f} M rows/s"
    )


if __name__ == "__main__":
    main()
