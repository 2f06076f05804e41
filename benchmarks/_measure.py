"""Run a function in fresh processes and report its median wall time and peak RSS."""

import json
import multiprocessing as mp
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process from ``/proc/<pid>/status``, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out


def peak_rss_gb() -> float:
    """This process's high-water mark of resident memory (VmHWM), in GB."""
    hwm = memory_kib().get("VmHWM")
    if hwm is None:
        raise RuntimeError("VmHWM not available")
    return hwm * 1024 / 1e9


def _child(fn: Callable[..., Any], args: tuple, queue: mp.Queue) -> None:
    start = time.perf_counter()
    extra = fn(*args)
    queue.put((time.perf_counter() - start, peak_rss_gb(), extra))


def measure(fn: Callable[..., Any], *args: Any, repeats: int = 3) -> dict[str, Any]:
    """Run ``fn(*args)`` ``repeats`` times, each in a fresh (spawned) interpreter.

    Imports happen before the clock starts; the peak RSS is the child's own high-water mark.
    """
    ctx = mp.get_context("spawn")
    walls, peaks, extras = [], [], []
    for _ in range(repeats):
        queue = ctx.Queue()
        process = ctx.Process(target=_child, args=(fn, args, queue))
        process.start()
        wall, peak, extra = queue.get()
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"benchmark child failed with exit code {process.exitcode}")
        walls.append(wall)
        peaks.append(peak)
        extras.append(extra)
    return {
        "median_s": statistics.median(walls),
        "runs_s": walls,
        "median_peak_rss_gb": statistics.median(peaks),
        "max_peak_rss_gb": max(peaks),
        "result": extras[-1],
    }


def run_child(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd`` (which prints a JSON object as its last line); that object plus, from
    ``wait4``, ``cpu_s`` (the child and the descendants it waited for) and ``peak_rss_gb`` (the
    largest of those processes' peaks, not their sum)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4: Popen must not wait for it again
    if code != 0:
        raise SystemExit(f"{Path(cmd[1]).name} child failed with exit code {code}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_gb"] = usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux
    return result
