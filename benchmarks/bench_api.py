"""Load test of the REST API on loopback: latency at a fixed rate, batch latency, max throughput.

Usage::

    .venv/bin/python benchmarks/bench_api.py            # full run (~3 minutes)
    .venv/bin/python benchmarks/bench_api.py --quick    # smoke run (~30 s)

What it does:

1. Builds a home under a temp folder: a tiny features table + LightGBM champion in a SQLite
   MLflow store (so the model is loaded as in production) and a synthetic forecasts export
   at full M5 scale (30,490 series x 28 days = 853,720 rows) unless ``--forecasts`` points
   at a real one.
2. Starts ``uvicorn forecasting_api.main:app`` (one worker, API keys on, JSON access log to a
   file, rate limit off so the generator is not throttled).
3. ``/predict`` with an open-loop generator: requests are *scheduled* at a fixed rate
   (default 200/s for 60 s) on 32 keep-alive connections; latency is measured from the
   scheduled time, so queueing delays count (no coordinated omission).
4. The same at the same rate with 5 % of the dates in the past (``--past-share``): those are
   answered by the model from the stored features (``source: model``), the rest from the
   forecasts; p99 of the mix and of the model answers alone. The features table has
   ``--feature-series`` series (default 1,000, one 148,000-row row group: after its first two
   misses, model answers come from the kept row group).
5. ``/predict/batch`` with 1,000 items, open loop at a fixed rate (default 5/s for 30 s).
6. Max throughput of one worker with ``wrk`` (Debian package ``wrk``) and a Lua script that
   POSTs random bodies; falls back to a closed-loop Python generator without wrk.
7. The service's memory: VmRSS after startup and VmHWM (peak) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, and its test helpers by qualified name

from _measure import memory_kib  # noqa: E402

from tests.api import helpers as fx  # noqa: E402

KEY = "bench-key"


# --------------------------------------------------------------------------- server
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    home: fx.Home, log: Path, stack: contextlib.ExitStack
) -> tuple[int, subprocess.Popen, float]:
    """The server on ``home`` (API keys on, JSON access log, rate limit off), stopped with
    ``stack``; returns its port, process and seconds until ready."""
    env = home.env() | {
        "FORECASTING_API_KEYS": KEY,
        "FORECASTING_API_RATE_LIMIT": "off",
        "FORECASTING_API_RELOAD_SECONDS": "30",
        "FORECASTING_API_ACCESS_LOG": "on",
    }
    t0 = time.perf_counter()
    url, proc = stack.enter_context(fx.server_process(env, log, ready=True))
    return int(url.rsplit(":", 1)[1]), proc, time.perf_counter() - t0


# --------------------------------------------------------------------------- client
def build_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, int]:
    """Send one request on a keep-alive connection; return (status, body bytes)."""
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    body = await reader.readexactly(n)
    return status, len(body)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    wall: float = 0.0
    late_starts: int = 0

    def of_kind(self, kind: str) -> Result:
        """The requests of one payload kind."""
        picked = [(t, c) for t, k, c in zip(self.latencies, self.kinds, self.codes, strict=True)
                  if k == kind]  # fmt: skip
        statuses: dict[int, int] = {}
        for _, c in picked:
            statuses[c] = statuses.get(c, 0) + 1
        return Result(latencies=[t for t, _ in picked], statuses=statuses, wall=self.wall)

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies) * 1000
        ok = sum(v for k, v in self.statuses.items() if 200 <= k < 300)
        return {
            "requests": len(self.latencies),
            "ok": ok,
            "non_2xx": len(self.latencies) - ok,
            "errors": self.errors,
            "throughput_rps": round(len(self.latencies) / self.wall, 1) if self.wall else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else float("nan"),
            "p95_ms": round(float(np.percentile(lat, 95)), 2) if len(lat) else float("nan"),
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else float("nan"),
            "max_ms": round(float(lat.max()), 2) if len(lat) else float("nan"),
        }


async def open_loop(
    port: int,
    payloads: list[bytes],
    rate: float,
    duration: float,
    connections: int = 32,
    other: list[bytes] | None = None,
    other_share: float = 0.0,
) -> Result:
    """Schedule requests at ``rate``/s for ``duration`` s; latency from the scheduled time.

    With ``other``, a share ``other_share`` of the requests is drawn from it (kind "other").
    """
    res = Result()
    queue: asyncio.Queue[tuple[float, bytes, str] | None] = asyncio.Queue()
    n_total = int(rate * duration)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                scheduled, payload, kind = item
                try:
                    status, _ = await roundtrip(reader, writer, payload)
                except (OSError, asyncio.IncompleteReadError):
                    res.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                res.latencies.append(time.perf_counter() - scheduled)
                res.kinds.append(kind)
                res.codes.append(status)
                res.statuses[status] = res.statuses.get(status, 0) + 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    rng = random.Random(1)
    start = time.perf_counter()
    for i in range(n_total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            res.late_starts += 1
        if other and rng.random() < other_share:
            queue.put_nowait((scheduled, other[rng.randrange(len(other))], "other"))
        else:
            queue.put_nowait((scheduled, payloads[rng.randrange(len(payloads))], "main"))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    res.wall = time.perf_counter() - start
    return res


async def closed_loop(
    port: int, payloads: list[bytes], duration: float, connections: int = 16
) -> Result:
    """Fallback max-throughput generator (each connection sends as fast as answered)."""
    res = Result()
    stop = time.perf_counter() + duration

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            status, _ = await roundtrip(reader, writer, payloads[rng.randrange(len(payloads))])
            res.latencies.append(time.perf_counter() - t)
            res.statuses[status] = res.statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    res.wall = time.perf_counter() - start
    return res


def run_wrk(
    port: int, bodies: list[str], duration: int, connections: int, workdir: Path
) -> dict[str, float] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    lua = workdir / "post.lua"
    quoted = ",\n".join(json.dumps(b) for b in bodies)
    lua.write_text(
        "wrk.method = 'POST'\n"
        f"wrk.headers['Authorization'] = 'Bearer {KEY}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        f"local bodies = {{\n{quoted}\n}}\n"
        "math.randomseed(7)\n"
        "request = function()\n"
        "  return wrk.format(nil, '/predict', nil, bodies[math.random(#bodies)])\n"
        "end\n"
    )
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * scale, 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "tool": "wrk",
        "connections": connections,
        "requests": int(total.group(1)) if total else 0,
        "throughput_rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "none",
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--batch-rate", type=float, default=5.0)
    ap.add_argument("--batch-duration", type=float, default=30.0)
    ap.add_argument("--max-duration", type=int, default=20, help="wrk seconds")
    ap.add_argument("--series", type=int, default=30_490)
    ap.add_argument("--forecasts", type=Path, help="use this forecasts.parquet instead")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--past-share", type=float, default=0.05, help="model answers in the mix")
    ap.add_argument("--feature-series", type=int, default=1000)
    args = ap.parse_args()
    if args.quick:
        args.duration, args.batch_duration, args.max_duration = 10.0, 8.0, 5

    work = Path(tempfile.mkdtemp(prefix="bench_api_"))
    stack = contextlib.ExitStack()
    try:
        t = time.perf_counter()
        n_items = max(1, -(-args.feature_series // len(fx.STORES)))
        items = tuple(f"FOODS_1_{k:03d}" for k in range(1, n_items + 1))
        home = fx.build_home(
            work / "home", with_forecasts=False, features=fx.make_features(items=items)
        )
        if args.forecasts:
            fc = pl.read_parquet(args.forecasts)
        else:
            fc = fx.make_forecasts_full_scale(n_series=args.series)
        fx.write_forecasts(home.home, fc)
        print(
            f"fixture: {fc.height:,} forecast rows, {fc['id'].n_unique():,} series "
            f"({time.perf_counter() - t:.1f}s)",
            flush=True,
        )

        port, proc, startup = start_server(home, work / "api.log", stack)
        mem_start = memory_kib(proc.pid)
        print(
            f"server ready in {startup:.1f}s, RSS {mem_start['VmRSS'] / 1024:.0f} MiB", flush=True
        )

        sample = fc.select("id", "date").sample(n=min(20_000, fc.height), seed=3)
        bodies = [
            json.dumps({"item_id": i, "date": d.isoformat()}, separators=(",", ":"))
            for i, d in zip(sample["id"].to_list(), sample["date"].to_list(), strict=True)
        ]
        # half of the requests use the item_id + store_id form
        for k in range(0, len(bodies), 2):
            b = json.loads(bodies[k])
            item, _, store = b["item_id"].rpartition("_")
            item, _, st = item.rpartition("_")
            b["item_id"], b["store_id"] = item, f"{st}_{store}"
            bodies[k] = json.dumps(b, separators=(",", ":"))
        single = [build_request(port, "/predict", b.encode()) for b in bodies]
        rng = random.Random(5)
        batches = []
        for _ in range(20):
            items = [json.loads(bodies[rng.randrange(len(bodies))]) for _ in range(args.batch_size)]
            batches.append(
                build_request(port, "/predict/batch", json.dumps({"items": items}).encode())
            )

        asyncio.run(open_loop(port, single, 100, 3))  # warm-up
        c0 = cpu_seconds(proc.pid)
        pred = asyncio.run(open_loop(port, single, args.rate, args.duration)).summary()
        pred["server_cpu_ms_per_request"] = round(
            (cpu_seconds(proc.pid) - c0) * 1000 / max(pred["requests"], 1), 3
        )
        print(f"/predict open loop {args.rate:g}/s for {args.duration:g}s: {pred}", flush=True)
        feats = home.features.filter(pl.col("lag_28").is_not_null() & pl.col("sales").is_not_null())
        past_rows = feats.select("id", "date").sample(n=min(20_000, feats.height), seed=4)
        past = [
            build_request(
                port,
                "/predict",
                json.dumps({"item_id": str(i), "date": d.isoformat()}).encode(),
            )
            for i, d in zip(past_rows["id"].to_list(), past_rows["date"].to_list(), strict=True)
        ]
        c0 = cpu_seconds(proc.pid)
        mix_res = asyncio.run(
            open_loop(
                port, single, args.rate, args.duration, other=past, other_share=args.past_share
            )
        )
        mix = mix_res.summary()
        mix["server_cpu_ms_per_request"] = round(
            (cpu_seconds(proc.pid) - c0) * 1000 / max(mix["requests"], 1), 3
        )
        model_answers = mix_res.of_kind("other").summary()
        print(
            f"/predict mix {args.rate:g}/s, {args.past_share:.0%} past dates, for "
            f"{args.duration:g}s: {mix}; model answers: {model_answers}",
            flush=True,
        )
        asyncio.run(open_loop(port, batches, args.batch_rate, 2, connections=8))  # warm-up
        c0 = cpu_seconds(proc.pid)
        batch = asyncio.run(
            open_loop(port, batches, args.batch_rate, args.batch_duration, connections=8)
        ).summary()
        batch["server_cpu_ms_per_request"] = round(
            (cpu_seconds(proc.pid) - c0) * 1000 / max(batch["requests"], 1), 3
        )
        print(
            f"/predict/batch ({args.batch_size} items) {args.batch_rate:g}/s for "
            f"{args.batch_duration:g}s: {batch}",
            flush=True,
        )
        c0 = cpu_seconds(proc.pid)
        maxt = run_wrk(port, bodies[:2000], args.max_duration, 32, work)
        cpu_max = cpu_seconds(proc.pid) - c0
        if maxt is None:
            maxt = {
                "tool": "python closed loop",
                **asyncio.run(closed_loop(port, single, args.max_duration)).summary(),
            }
        maxt["server_cpu_ms_per_request"] = round(cpu_max * 1000 / max(maxt["requests"], 1), 3)
        maxt["capacity_rps_at_one_core"] = round(maxt["requests"] / cpu_max, 0) if cpu_max else None
        print(f"max throughput (one worker): {maxt}", flush=True)
        mem_end = memory_kib(proc.pid)
        print(
            f"memory: RSS after start {mem_start['VmRSS'] / 1024:.0f} MiB, "
            f"peak (VmHWM) {mem_end['VmHWM'] / 1024:.0f} MiB",
            flush=True,
        )
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        report = {
            "load_average": os.getloadavg(),
            "forecast_rows": fc.height,
            "startup_s": round(startup, 2),
            "predict": pred,
            "predict_mix": mix,
            "model_answers": model_answers,
            "batch": batch,
            "max_throughput": maxt,
            "rss_after_start_mib": round(mem_start["VmRSS"] / 1024, 1),
            "peak_rss_mib": round(mem_end["VmHWM"] / 1024, 1),
            "targets": {
                "predict_p99_ms<=10": pred["p99_ms"] <= 10
                and pred["non_2xx"] == 0
                and pred["errors"] == 0,
                "batch_p99_ms<=100": batch["p99_ms"] <= 100 and batch["non_2xx"] == 0,
                "mix_p99_ms<=10": mix["p99_ms"] <= 10 and mix["non_2xx"] == 0,
                "model_answers_p99_ms<=25": model_answers["p99_ms"] <= 25,
            },
        }
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
