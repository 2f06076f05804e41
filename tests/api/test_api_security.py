"""API keys, rate limiting, CORS and settings parsing (server on a loopback port)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from forecasting_api.security import KeyChecker, RateLimiter
from forecasting_api.settings import ApiSettings, SettingsError, parse_rate_limit
from tests.api import helpers as fx
from tests.api.helpers import KEYS, auth, running_server


def _body(home: fx.Home) -> dict[str, str]:
    return {"item_id": "FOODS_1_001_CA_1", "date": home.first_horizon_date.isoformat()}


def test_keys_required_by_default(live_api: str, api_home: fx.Home) -> None:
    with httpx.Client(base_url=live_api, timeout=30) as c:
        r = c.post("/predict", json=_body(api_home))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "missing API key" in r.json()["detail"]
        r = c.post("/predict", json=_body(api_home), headers=auth("wrong"))
        assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
        r = c.get("/info", headers={"Authorization": f"Basic {KEYS[0]}"})
        assert r.status_code == 401
        for path in ("/info", "/model/info", "/model/features/importance"):
            assert c.get(path).status_code == 401
        for key in KEYS:  # several keys accepted
            assert c.post("/predict", json=_body(api_home), headers=auth(key)).status_code == 200
        for path in ("/", "/health", "/docs", "/openapi.json", "/metrics"):
            assert c.get(path).status_code == 200, path


def test_keys_file_and_auth_off(api_home: fx.Home, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# comment\nfile-key-A\n\nfile-key-B\n")
    env = {
        **api_home.env(),
        "FORECASTING_API_KEYS": "",
        "FORECASTING_API_KEYS_FILE": str(keys_file),
    }
    with running_server(env) as url:
        assert (
            httpx.post(
                f"{url}/predict", json=_body(api_home), headers=auth("file-key-B")
            ).status_code
            == 200
        )
        assert (
            httpx.post(f"{url}/predict", json=_body(api_home), headers=auth(KEYS[0])).status_code
            == 401
        )
    with running_server({**api_home.env(), "FORECASTING_API_AUTH": "off"}) as url:
        r = httpx.post(f"{url}/predict", json=_body(api_home))
        assert r.status_code == 200 and r.json()["source"] == "batch_forecast"
        assert httpx.get(f"{url}/info").json()["auth_enabled"] is False


def test_rate_limit_per_key_with_retry_after(api_home: fx.Home) -> None:
    env = {
        **api_home.env(),
        "FORECASTING_API_RATE_LIMIT": "5/minute",
        "FORECASTING_API_CORS_ORIGINS": "https://dash.example.org",
    }
    with running_server(env) as url, httpx.Client(base_url=url, timeout=30) as c:
        codes = [
            c.post("/predict", json=_body(api_home), headers=auth(KEYS[0])).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        r = c.get("/info", headers=auth(KEYS[0]))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["detail"]
        # another key has its own bucket; public endpoints are not limited
        assert c.get("/info", headers=auth(KEYS[1])).status_code == 200
        assert all(c.get("/health").status_code == 200 for _ in range(10))
        # failed auth attempts are limited per client address too
        bad = [c.get("/info", headers=auth("guess")).status_code for _ in range(6)]
        assert bad == [401] * 5 + [429]
        assert "forecasting_api_rate_limited_total 3.0" in c.get("/metrics").text
        # CORS: configured origin only
        pre = c.options(
            "/predict",
            headers={
                "Origin": "https://dash.example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert pre.headers.get("access-control-allow-origin") == "https://dash.example.org"
        other = c.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_by_default(live_api: str) -> None:
    r = httpx.get(f"{live_api}/health", headers={"Origin": "https://dash.example.org"})
    assert "access-control-allow-origin" not in r.headers


def test_token_bucket_refills_and_reports_wait() -> None:
    rl = RateLimiter(limit=3, period=60.0)
    assert [rl.check("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.check("a", now=0.0)
    assert wait == pytest.approx(20.0)  # one token per 20 s
    assert rl.check("b", now=0.0) == 0.0
    assert rl.check("a", now=10.0) == pytest.approx(10.0)
    assert rl.check("a", now=20.0) == 0.0
    rl2 = RateLimiter(limit=1, period=1.0, max_clients=4)
    for k in range(10):
        rl2.check(f"c{k}", now=float(k))
    assert len(rl2._buckets) <= 4


def test_key_checker_constant_time_match() -> None:
    kc = KeyChecker(("alpha", "beta"))
    assert kc.valid("beta") and kc.valid("alpha")
    assert not kc.valid("alph") and not kc.valid("") and not KeyChecker(()).valid("x")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (None, (100, 60.0)),
        ("", (100, 60.0)),
        ("100", (100, 60.0)),
        ("10/second", (10, 1.0)),
        ("5/s", (5, 1.0)),
        ("300/minutes", (300, 60.0)),
        ("1000/hour", (1000, 3600.0)),
        ("0", None),
        ("off", None),
    ],
)
def test_parse_rate_limit(text: str | None, want: tuple[int, float] | None) -> None:
    assert parse_rate_limit(text) == want


def test_bad_settings_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError):
        parse_rate_limit("ten/minute")
    with pytest.raises(SettingsError):
        parse_rate_limit("10/fortnight")
    monkeypatch.setenv("FORECASTING_API_RELOAD_SECONDS", "soon")
    with pytest.raises(SettingsError):
        ApiSettings.from_env()
    monkeypatch.setenv("FORECASTING_API_RELOAD_SECONDS", "2.5")
    monkeypatch.setenv("FORECASTING_API_AUTH", "off")
    monkeypatch.setenv("FORECASTING_API_KEYS", "a, b,,a")
    s = ApiSettings.from_env()
    assert s.reload_seconds == 2.5 and s.auth_enabled is False and s.api_keys == ("a", "b")


def test_dates_are_iso_only(live_api: str, api_home: fx.Home) -> None:
    day = api_home.first_horizon_date
    for bad in (day.strftime("%d/%m/%Y"), f"{day.isoformat()}T00:00:00", 1462060800, None):
        r = httpx.post(
            f"{live_api}/predict", headers=auth(), json={"item_id": "FOODS_1_001_CA_1", "date": bad}
        )
        assert r.status_code == 422, bad
    ok = httpx.post(
        f"{live_api}/predict",
        headers=auth(),
        json={"item_id": "FOODS_1_001_CA_1", "date": (day + dt.timedelta(1)).isoformat()},
    )
    assert ok.status_code == 200
