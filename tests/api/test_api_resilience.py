"""A bad champion, a lost registry, hostile clients: the API stays up and says what is wrong."""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.api import helpers as fx
from tests.api.helpers import auth, copy_home, running_server, server_process, wait_for

RELOAD = {"FORECASTING_API_RELOAD_SECONDS": "0.3"}


def _health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=30).json()


def _post_head(url: str, length: int) -> socket.socket:
    """A socket that has sent the head of an authorized ``POST /predict`` and no body yet."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + fx.KEYS[0].encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(length).encode() + b"\r\n\r\n"
    )  # fmt: skip
    return s


def _read_all(s: socket.socket) -> bytes:
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


def _truncate_booster(home: fx.Home, version: str) -> Path:
    """Cut the registered ``booster_global_direct.txt`` in half (as a failed copy would)."""
    (path,) = list(fx.model_files(home.tracking_uri, version).rglob("booster_global_direct.txt"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.slow
def test_truncated_booster_never_kills_the_api(api_home: fx.Home, tmp_path: Path) -> None:
    """LightGBM crashes (SIGSEGV or SIGABRT) on the file; the server checks it in a child process."""
    home = copy_home(api_home, tmp_path / "home")
    body = {"item_id": "FOODS_1_001_CA_1", "date": api_home.first_horizon_date.isoformat()}
    past = {"item_id": "FOODS_1_001_CA_1", "date": api_home.last_history_date.isoformat()}
    with server_process({**home.env(), **RELOAD}, tmp_path / "a.log") as (url, proc):
        assert _health(url)["model"]["version"] == "1"
        bad = fx.register_pipeline_model(home.tracking_uri, home.features)
        _truncate_booster(home, bad)
        assert wait_for(lambda: "crashed" in (_health(url)["model"]["error"] or ""), timeout=120)
        h = _health(url)
        assert proc.poll() is None, "the server died"
        assert (
            f"champion v{bad}" in h["model"]["error"]
            and "crashed with signal" in h["model"]["error"]
        )
        assert "serving the previous model" in h["model"]["error"]
        assert h["model"]["version"] == "1" and h["status"] == "degraded"
        with httpx.Client(base_url=url, headers=auth(), timeout=30) as c:
            assert c.post("/predict", json=past).json()["model_version"] == "1"
            assert c.post("/predict", json=body).status_code == 200
            metrics = c.get("/metrics").text
        assert 'forecasting_api_reload_failures_total{source="model"} 1.0' in metrics
        assert 'forecasting_api_source_error{source="model"} 1.0' in metrics

    # a restart with the bad champion: starts, reports it, serves the last good version
    with server_process({**home.env(), **RELOAD}, tmp_path / "b.log") as (url, proc):
        h = _health(url)
        assert h["live"] and h["ready"] and h["model"]["version"] == "1"
        error = h["model"]["error"]
        assert f"champion v{bad}" in error and "crashed with signal" in error
        assert "serving v1, the last good version" in error and h["status"] == "degraded"
        with httpx.Client(base_url=url, headers=auth(), timeout=30) as c:
            r = c.post("/predict", json=body)
            assert r.status_code == 200 and r.json()["source"] == "batch_forecast"
            r = c.post("/predict", json=past)
            assert r.status_code == 200 and r.json()["model_version"] == "1"
        # the operator moves the alias back: the error clears, the model serves
        fx.set_champion(home.tracking_uri, "1")
        assert wait_for(lambda: _health(url)["status"] == "ok", timeout=120)
        h = _health(url)
        assert h["status"] == "ok" and h["model"]["error"] is None and proc.poll() is None
    assert "champion v2" in (tmp_path / "b.log").read_text()  # logged


@pytest.mark.slow
def test_health_describes_the_present(api_home: fx.Home, tmp_path: Path) -> None:
    """A failed swap then the alias moved back; the registry taken away then put back."""
    home = copy_home(api_home, tmp_path / "home")
    with running_server({**home.env(), **RELOAD}) as url:
        fx.train_and_register(
            home.tracking_uri, home.features, seed=1, feature_columns_param=["wday", "nope"]
        )
        assert wait_for(lambda: "missing" in (_health(url)["model"]["error"] or ""), timeout=90)
        fx.set_champion(home.tracking_uri, "1")
        assert wait_for(lambda: _health(url)["status"] == "ok", timeout=30)
        assert _health(url)["model"]["error"] is None

        db = home.home / "mlflow.db"
        shutil.move(db, db.with_suffix(".away"))
        assert wait_for(lambda: _health(url)["registry"]["error"] is not None)
        h = _health(url)
        assert "registry not found" in h["registry"]["error"]
        assert "no champion alias" not in h["registry"]["error"]
        assert h["model"]["version"] == "1" and h["model"]["error"] is None
        shutil.move(db.with_suffix(".away"), db)
        assert wait_for(lambda: _health(url)["status"] == "ok")
        assert _health(url)["registry"] == {**_health(url)["registry"], "error": None}

        db.with_suffix(".good").write_bytes(db.read_bytes())
        db.write_bytes(b"this is not a database" * 100)
        assert wait_for(lambda: _health(url)["registry"]["error"] is not None)
        assert "registry unreachable" in _health(url)["registry"]["error"]
        db.write_bytes(db.with_suffix(".good").read_bytes())
        assert wait_for(lambda: _health(url)["status"] == "ok")


def test_auth_and_rate_limit_come_before_the_body(api_home: fx.Home) -> None:
    env = {**api_home.env(), "FORECASTING_API_RATE_LIMIT": "5/minute"}
    with running_server(env) as url, httpx.Client(base_url=url, timeout=30) as c:
        broken = b'{"item_id":'
        codes = [
            c.post(
                "/predict", content=broken, headers={"Content-Type": "application/json"}
            ).status_code
            for _ in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3
        ok = c.post(
            "/predict", content=broken, headers={**auth(), "Content-Type": "application/json"}
        )
        assert ok.status_code == 422 and "malformed JSON" in ok.json()["detail"]
        text = c.get("/metrics").text
        assert 'requests_total{endpoint="/predict",method="POST",status="401"} 5.0' in text
        assert 'requests_total{endpoint="/predict",method="POST",status="429"} 3.0' in text


def test_forwarded_for_from_loopback_does_not_buy_new_buckets(api_home: fx.Home) -> None:
    env = {**api_home.env(), "FORECASTING_API_RATE_LIMIT": "3/minute"}
    with running_server(env) as url, httpx.Client(base_url=url, timeout=30) as c:
        codes = [
            c.get("/info", headers={"X-Forwarded-For": f"10.0.0.{k}", **auth("guess")}).status_code
            for k in range(6)
        ]
        assert codes == [401] * 3 + [429] * 3
    trusted = {**env, "FORECASTING_API_TRUSTED_PROXIES": "127.0.0.1"}
    with running_server(trusted) as url, httpx.Client(base_url=url, timeout=30) as c:
        codes = [  # behind a trusted proxy, each forwarded client has its own bucket
            c.get("/info", headers={"X-Forwarded-For": f"10.0.0.{k}", **auth("guess")}).status_code
            for k in range(6)
        ]
        assert codes == [401] * 6


def test_stalled_body_gets_408_and_is_closed(api_home: fx.Home) -> None:
    env = {**api_home.env(), "FORECASTING_API_BODY_TIMEOUT_SECONDS": "1"}
    with running_server(env) as url, _post_head(url, 200) as s:
        s.sendall(b'{"item')
        t0 = time.monotonic()
        got = _read_all(s)
        waited = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408") and b"not received within 1 s" in got
    assert 0.8 < waited < 5  # answered, then the server closed the connection


def test_whole_request_timeout_answers_503(api_home: fx.Home) -> None:
    env = {
        **api_home.env(),
        "FORECASTING_API_BODY_TIMEOUT_SECONDS": "30",
        "FORECASTING_API_REQUEST_TIMEOUT_SECONDS": "1",
    }
    with running_server(env) as url, _post_head(url, 200) as s:
        t0 = time.monotonic()
        with contextlib.suppress(OSError):
            for _ in range(8):  # a trickle: each byte in time, the whole far too slow
                s.sendall(b" ")
                time.sleep(0.3)
        got = _read_all(s)
        waited = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 503") and b"timed out after 1 s" in got
    assert waited < 6


@pytest.mark.slow
def test_max_batch_setting_drives_schema_openapi_info_and_422(api_home: fx.Home) -> None:
    env = {
        **api_home.env(),
        "FORECASTING_API_MAX_BATCH": "20000",
        "FORECASTING_API_MAX_BODY_BYTES": str(8 * 1024 * 1024),
    }
    one = {"item_id": "FOODS_1_001_CA_1", "date": api_home.first_horizon_date.isoformat()}
    with running_server(env) as url, httpx.Client(base_url=url, headers=auth(), timeout=60) as c:
        r = c.post("/predict/batch", json={"items": [one] * 15_000})
        assert r.status_code == 200 and len(r.json()) == 15_000
        r = c.post("/predict/batch", json={"items": [one] * 20_001})
        assert r.status_code == 422 and "20001 > 20000" in r.json()["detail"]
        spec = c.get("/openapi.json").json()
        items = spec["components"]["schemas"]["BatchPredictionRequest"]["properties"]["items"]
        assert items["maxItems"] == 20_000
        assert c.get("/info").json()["max_batch_items"] == 20_000
