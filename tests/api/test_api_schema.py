"""`uvicorn forecasting_api.main:app` as a real process: Schemathesis fuzzing + log hygiene.

Schemathesis (CLI) generates requests from the OpenAPI schema: >= 1,000 requests (counted
by the server's own Prometheus counter), no 5xx, responses conform to the schema (status
codes, content types, bodies, headers), auth not ignored. ``positive_data_acceptance`` is
excluded on purpose: schema-valid but unknown item ids are correctly answered 404.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import helpers as fx
from tests.api.helpers import wait_for

SECRET_KEY = "sk-live-0123456789abcdef"
MARKER = "BODYMARKER_7f3a"
MIN_REQUESTS = 1000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_process(
    api_home: fx.Home, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The app started with the documented command; yields (base url, log file)."""
    log = tmp_path_factory.mktemp("api_proc") / "api.log"
    env = {
        **api_home.env(),
        "FORECASTING_API_KEYS": f"other-key,{SECRET_KEY}",
        "FORECASTING_API_RATE_LIMIT": "100000/minute",
        "FORECASTING_API_RELOAD_SECONDS": "5",
        "FORECASTING_API_ACCESS_LOG": "on",
    }
    with fx.server_process(env, log, ready=True) as (url, _):
        yield url, log


def _request_counts(url: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        m = re.match(r"^forecasting_api_requests_total\{(.*)\} ([0-9.e+]+)$", line)
        if m:
            counts[m.group(1)] = float(m.group(2))
    return counts


def _schemathesis_run(st: str, url: str, seed: int, report_dir: Path) -> None:
    """One Schemathesis run over every operation; fails the test on any finding."""
    cmd = [
        st,
        "run",
        f"{url}/openapi.json",
        "-H",
        f"Authorization: Bearer {SECRET_KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        os.environ.get("API_SCHEMATHESIS_EXAMPLES", "450"),
        "--seed",
        str(seed),
        "--request-timeout",
        "30",
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=report_dir)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    api_process: tuple[str, Path], tmp_path: Path
) -> None:
    """Runs with successive seeds until MIN_REQUESTS were sent: Hypothesis may stop a run
    early once it judges an operation's inputs exhausted, so one seed's count varies."""
    url, _ = api_process
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is not installed (pip install schemathesis)")
    before = sum(_request_counts(url).values())
    seed = int(os.environ.get("API_SCHEMATHESIS_SEED", "20260527"))
    total = 0.0
    for attempt in range(3):
        _schemathesis_run(st, url, seed + attempt, tmp_path)
        counts = _request_counts(url)
        server_errors = {k: v for k, v in counts.items() if re.search(r'status="5\d\d"', k)}
        assert not server_errors, server_errors
        total = sum(counts.values()) - before
        if total >= MIN_REQUESTS:
            break
    assert total >= MIN_REQUESTS, f"only {total:.0f} requests generated in 3 runs"


def test_logs_are_json_and_never_contain_keys_or_bodies(api_process: tuple[str, Path]) -> None:
    url, log = api_process
    headers = {"Authorization": f"Bearer {SECRET_KEY}", "X-Request-ID": "trace-me-42"}
    r = httpx.post(
        f"{url}/predict",
        headers=headers,
        json={"item_id": MARKER, "store_id": "CA_1", "date": "2016-05-01"},
    )
    assert r.status_code == 404
    httpx.post(
        f"{url}/predict",
        headers={"Authorization": "Bearer wrong-" + SECRET_KEY},
        json={"item_id": MARKER, "date": "2016-05-01"},
    )
    assert wait_for(lambda: "trace-me-42" in log.read_text(), timeout=10)
    text = log.read_text()
    assert SECRET_KEY not in text
    assert MARKER not in text
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    access = [ln for ln in lines if ln.get("event") == "request"]
    assert access, text[-2000:]
    mine = next(ln for ln in access if ln["request_id"] == "trace-me-42")
    assert mine["endpoint"] == "/predict" and mine["status"] == 404
    assert mine["method"] == "POST" and mine["latency_ms"] > 0
    assert mine["client"].startswith("key:") and len(mine["client"]) == 16
    assert all(
        {"timestamp", "level", "request_id", "status", "latency_ms"} <= ln.keys() for ln in access
    )
