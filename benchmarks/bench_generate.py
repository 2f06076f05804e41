"""Benchmark the M5 sample generator at full M5 size (10 stores, 3,049 items, 1,941 days).

Each repeat runs in a fresh subprocess so its peak RSS (VmHWM) is the generator's own.
Prints the median wall time, peak RSS and throughput.

    python benchmarks/bench_generate.py [--repeats 3] [--out DIR] [--stores 10]
        [--items-per-dept N] [--days 1941] [--gzip] [--stats]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: argparse.Namespace) -> None:
    """Generate once and print a JSON line with the timings and sizes."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from forecasting_assets.m5.generator import generate_m5

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    paths = generate_m5(
        Path(args.out),
        n_stores=args.stores,
        items_per_dept=args.items_per_dept,
        n_days=args.days,
        seed=args.seed,
        compress=args.gzip,
    )
    seconds = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    counts = {
        key: pl.scan_csv(path).select(pl.len()).collect().item() for key, path in paths.items()
    }
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": counts,
        "bytes": {key: path.stat().st_size for key, path in paths.items()},
    }
    print(json.dumps(result))


def _zero_share(out: Path) -> float:
    """Share of zero cells in the written sales file (all d_ columns)."""
    import polars as pl

    path = next(out.glob("sales_train_evaluation.csv*"))
    sales = pl.read_csv(path).select(pl.col("^d_\\d+$"))
    zeros = sales.select(pl.sum_horizontal(pl.all() == 0)).to_series().sum()
    return zeros / (sales.height * sales.width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp folder)")
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--items-per-dept", type=int, default=None)
    parser.add_argument("--days", type=int, default=1941)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--stats", action="store_true", help="also report the zero share")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        out = args.out or Path(tmp)
        cmd = [sys.executable, __file__, "--child", "--out", str(out), "--stores", str(args.stores)]
        cmd += ["--days", str(args.days), "--seed", str(args.seed)]
        if args.items_per_dept is not None:
            cmd += ["--items-per-dept", str(args.items_per_dept)]
        if args.gzip:
            cmd.append("--gzip")
        runs = []
        for i in range(args.repeats):
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(
                f"repeat {i + 1}: {run['seconds']:.2f} s wall, {run['cpu_seconds']:.2f} s CPU, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB"
            )
        children_max_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        zeros = _zero_share(out) if args.stats else None

    seconds = statistics.median(r["seconds"] for r in runs)
    rows = runs[0]["rows"]
    total_rows = sum(rows.values())
    series_days = rows["sales"] * args.days
    print(f"size: stores={args.stores} items_per_dept={args.items_per_dept} days={args.days}")
    print("rows: " + ", ".join(f"{k}={v:,}" for k, v in rows.items()))
    print("MB:   " + ", ".join(f"{k}={v / 1e6:.1f}" for k, v in runs[0]["bytes"].items()))
    print(f"median wall time: {seconds:.2f} s over {len(runs)} repeats")
    print(
        f"peak RSS: {max(r['peak_rss_mb'] for r in runs):.0f} MB (VmHWM of the generating process)"
    )
    print(f"peak RSS of children (ru_maxrss): {children_max_rss:.0f} MB")
    print(f"median CPU time: {statistics.median(r['cpu_seconds'] for r in runs):.2f} s")
    if zeros is not None:
        print(f"zero share of the sales file: {zeros:.3f}")
    print(
        f"throughput: {total_rows / seconds:,.0f} CSV rows/s, {series_days / seconds:,.0f} cells/s"
    )


if __name__ == "__main__":
    main()
