"""Benchmark: the feature table single-process vs store partitions on two Celery workers.

    python benchmarks/bench_scaleout.py --sales-long /path/to/sales_long.parquet  # reuse one
    python benchmarks/bench_scaleout.py                         # generate full synthetic M5 first
    python benchmarks/bench_scaleout.py --n-stores 2 --items-per-dept 20 --n-days 400  # quick

A: the default ``features`` asset's code path (``write_features``: store by store, streamed to
one Parquet file) in one fresh process. B: the scale-out location for real -- a Redis broker,
two ``dagster-celery`` workers (one task each at a time), the stores registered as dynamic
partitions, and the backfill's runs (``--partitions-per-run`` stores each; default 5 -> two
runs for M5's ten stores, one per worker) launched together with ``dagster job execute``.
B's wall time runs from launching the runs to the last run's end, so it includes every
process start, code-location import and Celery hand-off. Prints wall, CPU and peak RSS for A
and B, the per-run step times, and checks that B wrote the same rows as A.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _measure import run_child  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def _child(sales_long: str, out: str) -> None:
    import polars as pl

    from forecasting_assets.features.pipeline import write_features

    t0 = time.perf_counter()
    result = write_features(pl.scan_parquet(sales_long), out)
    print(json.dumps({"wall": time.perf_counter() - t0, "rows": result.rows}))


def _sales_long(args: argparse.Namespace, work: Path) -> Path:
    if args.sales_long:
        return args.sales_long.resolve()
    tag = f"gen_{args.n_stores}s_{args.items_per_dept or 'full'}i_{args.n_days}d"
    cache = work / f"sales_long_{tag}.parquet"
    if cache.exists():
        return cache
    from forecasting_assets.m5 import readers
    from forecasting_assets.m5.generator import generate_m5
    from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers

    raw = work / tag
    t0 = time.perf_counter()
    generate_m5(
        raw, n_stores=args.n_stores, items_per_dept=args.items_per_dept, n_days=args.n_days, seed=0
    )
    calendar = calendar_with_day_numbers(
        readers.read_calendar(readers.require_m5_file(raw, "calendar"))
    )
    sales = readers.read_sales(readers.require_m5_file(raw, "sales"))
    prices = readers.read_prices(readers.require_m5_file(raw, "prices"))
    build_sales_long(calendar, sales, prices).write_parquet(cache)
    print(f"prepared {cache} in {time.perf_counter() - t0:.0f}s")
    return cache


def _single(sales_long: Path, out: Path) -> dict:
    """Mode A in a fresh process: wall (inside), CPU and peak RSS (from wait4)."""
    return run_child([sys.executable, __file__, "--child", str(sales_long), str(out)], ROOT)


def _proc_stats(pid: int) -> tuple[float, float]:
    """(peak RSS GB, CPU seconds) of one live process."""
    hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024**2
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return hwm, cpu


def _partitioned(sales_long: Path, work: Path, per_run: int) -> dict:
    """Mode B: Redis + two Celery workers + one `dagster job execute` per backfill run."""
    from tests.pipeline.services import process_tree, redis_server

    home, dagster_home = work / "home", work / "dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(dagster_home, ignore_errors=True)
    (home / "assets").mkdir(parents=True)
    (home / "assets" / "sales_long.parquet").symlink_to(sales_long)
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FORECASTING_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "FEATURES_PARTITIONS_PER_RUN": str(per_run),
    }
    os.environ.update({k: env[k] for k in ("FORECASTING_HOME", "DAGSTER_HOME")})
    import dagster as dg
    import polars as pl

    from forecasting_assets import scaleout
    from forecasting_assets.scaleout import chunk_stores, register_stores

    with dg.DagsterInstance.get() as instance:
        stores = register_stores(instance, pl.scan_parquet(sales_long))
    groups = chunk_stores(stores, per_run)
    with redis_server() as broker:
        env["DAGSTER_CELERY_BROKER_URL"] = broker

        def worker_command(name: str) -> list[str]:
            return [
                str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                "-y", str(ROOT / "deploy" / "celery.yaml"), "-n", name, "-l", "WARNING",
                "-i", "forecasting_assets.definitions_scaleout", "--", "--concurrency=1",
            ]  # fmt: skip

        workers = [
            subprocess.Popen(
                worker_command(f"bench{i}"),
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for i in (1, 2)
        ]
        try:
            from dagster_celery.make_app import make_app

            app = make_app({"broker": broker, "backend": broker})
            while len(app.control.ping(timeout=1.0)) < 2:
                time.sleep(0.5)
            base = [_proc_stats(p) for w in workers for p in process_tree(w.pid)[1:]]
            t0 = time.perf_counter()
            command = [str(VENV_BIN / "dagster"), "job", "execute", "-j", "features_by_store",
                       "-m", "forecasting_assets.definitions_scaleout", "--tags"]  # fmt: skip
            tags = [
                {
                    "dagster/asset_partition_range_start": g[0],
                    "dagster/asset_partition_range_end": g[-1],
                }
                for g in groups
            ]
            runs = [
                subprocess.Popen(
                    [*command, json.dumps(t)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for t in tags
            ]
            codes = [r.wait() for r in runs]
            wall = time.perf_counter() - t0
            if any(codes):
                raise SystemExit(f"partition runs failed: exit codes {codes}")
            pool = [_proc_stats(p) for w in workers for p in process_tree(w.pid)[1:]]
        finally:
            for w in workers:
                os.killpg(w.pid, signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(w.pid, signal.SIGKILL)
    with dg.DagsterInstance.get() as instance:
        steps = []
        for run in instance.get_runs():
            for stat in instance.get_run_step_stats(run.run_id):
                if stat.step_key == "features" and stat.end_time and stat.start_time:
                    steps.append(round(stat.end_time - stat.start_time, 1))
    rows = sum(
        pl.scan_parquet(scaleout.partition_path(s)).select(pl.len()).collect().item()
        for s in stores
    )
    return {
        "wall": wall,
        "rows": rows,
        "runs": len(groups),
        "stores": len(stores),
        "feature_step_s": sorted(steps),
        "worker_cpu_s": sum(c for _, c in pool) - sum(c for _, c in base),
        "worker_peak_rss_gb": max(h for h, _ in pool),
        "partition_dir": str(scaleout.partition_path(stores[0]).parent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales-long", type=Path, help="existing sales_long Parquet to reuse")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_so")
    parser.add_argument("--n-stores", type=int, default=10)
    parser.add_argument("--items-per-dept", type=int, default=None, help="default: M5 counts")
    parser.add_argument("--n-days", type=int, default=1941)
    parser.add_argument("--partitions-per-run", type=int, default=5)
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sales_long = _sales_long(args, work)
    print(
        f"input {sales_long}; load avg before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    single = None
    if not args.skip_single:
        single = _single(sales_long, work / "features_single.parquet")
        print(
            f"A single process: {single['wall']:.1f}s wall, {single['cpu_s']:.1f}s CPU, "
            f"peak RSS {single['peak_rss_gb']:.2f} GB, {single['rows']:,} rows "
            f"(load avg {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    part = _partitioned(sales_long, work, args.partitions_per_run)
    print(
        f"B {part['stores']} store partitions in {part['runs']} runs on 2 Celery workers: "
        f"{part['wall']:.1f}s wall (launch to last run end), workers' CPU {part['worker_cpu_s']:.1f}s, "
        f"peak RSS per worker process {part['worker_peak_rss_gb']:.2f} GB, "
        f"features step times {part['feature_step_s']} s, {part['rows']:,} rows "
        f"(load avg {os.getloadavg()[0]:.1f})"
    )
    if single is not None:
        assert part["rows"] == single["rows"], "partitioned rows differ from the single run"
        print(f"speed-up A/B: {single['wall'] / part['wall']:.2f}x; rows identical in count")


if __name__ == "__main__":
    main()
