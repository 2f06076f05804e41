"""Start `dg dev` (webserver + daemon) for real and ask its GraphQL API what it serves."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

QUERY = """
{
  assetNodes { assetKey { path } }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        jobs { name }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@pytest.mark.slow
@pytest.mark.daemon
@pytest.mark.timeout(240)
def test_dg_dev_serves_assets_schedules_and_sensors(home: Path, raw_dir: Path) -> None:
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    dg_cli = Path(sys.executable).parent / "dg"
    process = subprocess.Popen(
        [str(dg_cli), "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        data = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            try:
                data = graphql(port, QUERY)
                if data["assetNodes"]:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(2)
        assert data, "dg dev did not answer GraphQL in time"
        assets = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
        assert {"raw_calendar", "raw_sales", "raw_prices", "sales_long"} <= assets
        repo = data["repositoriesOrError"]["nodes"][0]
        assert {"m5_pipeline", "forecast_with_champion", "retrain"} <= {
            j["name"] for j in repo["jobs"]
        }
        schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
        assert schedules == {"nightly_retrain": "RUNNING", "daily_forecast": "STOPPED"}
        sensor_names = {s["name"] for s in repo["sensors"]}
        assert {
            "raw_files_sensor",
            "drift_alert_sensor",
            "run_failure_alert_sensor",
        } <= sensor_names
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
