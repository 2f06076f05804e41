"""Benchmark: build + write the feature table at full M5 size (and on the real subset).

    python benchmarks/bench_features.py                      # generated full M5, 3 repeats
    python benchmarks/bench_features.py --raw-dir /work/shared/m5 --repeats 3
    python benchmarks/bench_features.py --n-stores 2 --items-per-dept 50 --repeats 1  # quick

Raw files are generated (or reused with --raw-dir / an existing --work-dir), then ``sales_long``
is built with the ingestion transform and cached as Parquet; neither is timed. Each repeat runs
in a fresh subprocess that scans the cached ``sales_long`` and streams the feature table to
Parquet (``write_features``); the script prints the median wall time, the peak RSS of the
subprocess and rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _measure import run_child  # noqa: E402


def _child(sales_long: str, out: str) -> None:
    import polars as pl

    from forecasting_assets.features.pipeline import write_features

    t0 = time.perf_counter()
    result = write_features(pl.scan_parquet(sales_long), out, isolated=True)
    wall = time.perf_counter() - t0
    cols = len(pl.scan_parquet(out).collect_schema())
    size = Path(out).stat().st_size
    print(json.dumps({"wall": wall, "rows": result.rows, "columns": cols, "bytes": size}))


def _sales_long(raw_dir: Path, cache: Path) -> Path:
    if cache.exists():
        return cache
    from forecasting_assets.m5 import readers
    from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers

    t0 = time.perf_counter()
    calendar = calendar_with_day_numbers(
        readers.read_calendar(readers.require_m5_file(raw_dir, "calendar"))
    )
    sales = readers.read_sales(readers.require_m5_file(raw_dir, "sales"))
    prices = readers.read_prices(readers.require_m5_file(raw_dir, "prices"))
    long = build_sales_long(calendar, sales, prices)
    tmp = cache.with_suffix(".tmp")
    long.write_parquet(tmp)
    tmp.replace(cache)
    print(f"sales_long: {long.height:,} rows built in {time.perf_counter() - t0:.1f}s -> {cache}")
    return cache


def _run_once(sales_long: Path, out: Path) -> dict:
    loads: list[float] = []
    stop = threading.Event()

    def sample() -> None:  # 1-minute load average every 5 s while the child runs
        while not stop.wait(5.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_child([sys.executable, __file__, "--child", str(sales_long), str(out)], ROOT)
    finally:
        stop.set()
    loads.append(os.getloadavg()[0])
    result["load"] = (min(loads), sum(loads) / len(loads), max(loads))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, help="existing M5 folder (else generated)")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_features"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-stores", type=int, default=10)
    parser.add_argument("--items-per-dept", type=int, default=None, help="default: real M5 counts")
    parser.add_argument("--n-days", type=int, default=1941)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    if args.raw_dir:
        raw, tag = args.raw_dir, args.raw_dir.resolve().name
    else:
        tag = f"gen_{args.n_stores}s_{args.items_per_dept or 'full'}i_{args.n_days}d"
        raw = work / tag
        if not (raw / "calendar.csv").exists():
            from forecasting_assets.m5.generator import generate_m5

            t0 = time.perf_counter()
            generate_m5(
                raw,
                n_stores=args.n_stores,
                items_per_dept=args.items_per_dept,
                n_days=args.n_days,
                seed=0,
            )
            print(f"generated raw files in {time.perf_counter() - t0:.1f}s -> {raw}")
    sales_long = _sales_long(raw, work / f"sales_long_{tag}.parquet")
    out = work / f"features_{tag}.parquet"

    runs = []
    for i in range(args.repeats):
        r = _run_once(sales_long, out)
        runs.append(r)
        print(
            f"repeat {i + 1}: {r['wall']:.1f}s wall, {r['cpu_s']:.1f}s CPU, "
            f"peak RSS {r['peak_rss_gb']:.2f} GB, {r['rows']:,} rows x {r['columns']} cols, "
            f"{r['bytes'] / 1e9:.2f} GB parquet, load avg (1 min) during run "
            "min/mean/max {:.1f}/{:.1f}/{:.1f}".format(*r["load"]),
            flush=True,
        )
    if not runs:
        print(f"prepared {sales_long}; no timed repeats requested")
        return
    wall = statistics.median(r["wall"] for r in runs)
    rss = max(r["peak_rss_gb"] for r in runs)
    rows = runs[0]["rows"]
    print(
        f"features [{tag}]: median {wall:.1f}s wall over {len(runs)} repeat(s), "
        f"peak RSS {rss:.2f} GB, {rows / wall / 1e6:.2f} M rows/s ({rows:,} rows), "
        f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
