"""Benchmark: the nightly job (``m5_pipeline``, what the nightly schedule launches) end to end.

Runs ``dagster job execute -m forecasting_assets.definitions -j m5_pipeline`` for real (Dagster
SQLite storage, MLflow SQLite store, the project's ``dagster.yaml``) on a fresh FORECASTING_HOME:
raw files -> validation -> sales_long -> features -> baselines -> demand_model (6-fold backtest,
final model, registry) -> batch_forecasts -> drift_report -> inventory_plan.

    python benchmarks/bench_nightly.py                      # generate full synthetic M5 first
    python benchmarks/bench_nightly.py --raw-dir /path/m5   # existing M5-shaped files

Prints the wall time, the peak memory of the whole process tree (sum of every live process's
RSS, sampled every 0.2 s, so the feature build's child process counts too), each step's time
from Dagster's own run stats, and what the run produced.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _measure import memory_kib

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in task.read_text().split()]
    return out


def tree_rss_bytes(root: int) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (0 for processes that vanished)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += memory_kib(pid).get("VmRSS", 0) * 1024
            todo += _children(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class PeakSampler(threading.Thread):
    """Samples the process tree's total RSS until stopped; keeps every ``(unix time, bytes)``."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    @property
    def peak(self) -> int:
        """Largest sampled total RSS."""
        return max((b for _, b in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        """Largest total RSS sampled between two unix times."""
        return max((b for t, b in self.samples if start <= t <= end), default=0)

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.time(), tree_rss_bytes(self.pid)))
            time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def generate(out: Path) -> None:
    """Full-scale synthetic M5 (30,490 series x 1,941 days) with the project's generator."""
    subprocess.run(
        [sys.executable, "-m", "forecasting_assets.m5.generator", "--out", str(out), "--seed", "0"],
        check=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--raw-dir", help="M5-shaped raw files (default: generate full scale)")
    ap.add_argument("--home", help="FORECASTING_HOME (default: a new temporary directory)")
    ap.add_argument("--job", default="m5_pipeline")
    args = ap.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="bench_nightly_")).resolve()
    raw = Path(args.raw_dir).resolve() if args.raw_dir else home / "raw"
    if not args.raw_dir:
        t = time.perf_counter()
        generate(raw)
        print(f"generated full-scale data in {time.perf_counter() - t:.1f}s -> {raw}")
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "FORECASTING_HOME": str(home),
        "M5_RAW_DIR": str(raw),
        "DAGSTER_HOME": str(dagster_home),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(VENV_BIN / "dagster"), "job", "execute", "-m", "forecasting_assets.definitions",
           "-j", args.job]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    sampler = PeakSampler(proc.pid)
    sampler.start()
    assert proc.stdout is not None
    log = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop()
    (home / "bench_nightly.log").write_text(log)
    if proc.returncode != 0:
        print(log[-5000:])
        raise SystemExit(f"job failed (exit {proc.returncode}); log: {home / 'bench_nightly.log'}")

    os.environ.update({k: env[k] for k in ("FORECASTING_HOME", "M5_RAW_DIR", "DAGSTER_HOME")})
    import dagster as dg
    import polars as pl

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        steps = instance.get_run_step_stats(run.run_id)
    exports = home / "exports"
    forecasts = pl.scan_parquet(exports / "forecasts.parquet")
    n_rows, n_series = forecasts.select(pl.len(), pl.col("id").n_unique()).collect().row(0)
    drift = json.loads((exports / "drift_report.json").read_text())
    plan_rows = pl.scan_parquet(exports / "inventory_plan.parquet").select(pl.len()).collect()
    print(f"\n## Nightly job `{args.job}` on {raw}")
    print(f"run {run.run_id}: {run.status.value}")
    print(f"wall time (CLI start to exit, imports included): {wall:.1f}s = {wall / 60:.1f} min")
    print(f"peak memory of the process tree: {sampler.peak / 1e9:.2f} GB")
    print("\n| step | seconds | peak GB (process tree, during the step) |\n|---|---:|---:|")
    for s in sorted(steps, key=lambda s: s.start_time or 0):
        if s.start_time and s.end_time:
            peak = sampler.peak_between(s.start_time, s.end_time) / 1e9
            print(f"| {s.step_key} | {s.end_time - s.start_time:.1f} | {peak:.2f} |")
    print(f"\nforecasts: {n_rows:,} rows, {n_series:,} series; drift status: {drift.get('status')}; "
          f"inventory plan: {plan_rows.item():,} rows")  # fmt: skip


if __name__ == "__main__":
    main()
