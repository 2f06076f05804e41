"""Startup with nothing materialized, hot reload, keep-previous-on-failure, swap under load."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from collections import defaultdict
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.api import helpers as fx
from tests.api.helpers import auth, copy_home, running_server, wait_for

RELOAD = {"FORECASTING_API_RELOAD_SECONDS": "0.2"}


def _health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=30).json()


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


@pytest.mark.slow
def test_starts_empty_then_picks_up_materialized_files(api_home: fx.Home, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "FORECASTING_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        **RELOAD,
    }
    body = {"item_id": "FOODS_1_001_CA_1", "date": api_home.first_horizon_date.isoformat()}
    with running_server(env) as url, httpx.Client(base_url=url, headers=auth(), timeout=30) as c:
        h = _health(url)
        assert h["live"] is True and h["ready"] is False and h["status"] == "unavailable"
        assert c.get("/health/ready").status_code == 503
        r = c.post("/predict", json=body)
        assert r.status_code == 503 and "not ready" in r.json()["detail"]
        assert c.post("/predict/batch", json={"items": [body]}).status_code == 503
        assert c.get("/model/info").status_code == 503
        assert c.get("/model/features/importance").status_code == 503
        assert c.get("/info").json()["ready"] is False
        assert not (home / "mlflow.db").exists(), "the API must not create an MLflow store"

        _atomic_copy(
            api_home.home / "exports" / "forecasts.parquet", home / "exports" / "forecasts.parquet"
        )
        assert wait_for(lambda: _health(url)["forecasts"]["loaded"])
        r = c.post("/predict", json=body)
        assert r.status_code == 200 and r.json()["source"] == "batch_forecast"
        assert _health(url)["ready"] is False  # no model yet: history dates still 503
        hist = {"item_id": "FOODS_1_001_CA_1", "date": api_home.last_history_date.isoformat()}
        assert c.post("/predict", json=hist).status_code == 503

        _atomic_copy(
            api_home.home / "assets" / "features.parquet", home / "assets" / "features.parquet"
        )
        _atomic_copy(api_home.home / "mlflow.db", home / "mlflow.db")
        assert wait_for(lambda: _health(url)["ready"], timeout=90)
        r = c.post("/predict", json=hist)
        assert r.status_code == 200 and r.json()["source"] == "model"
        assert c.get("/health/ready").status_code == 200


def test_corrupt_forecasts_keep_previous_then_new_file_is_served(
    api_home: fx.Home, tmp_path: Path
) -> None:
    home = copy_home(api_home, tmp_path / "home")
    target = home.home / "exports" / "forecasts.parquet"
    body = {"item_id": "FOODS_3_090_TX_1", "date": api_home.first_horizon_date.isoformat()}
    with (
        running_server({**home.env(), **RELOAD}) as url,
        httpx.Client(base_url=url, headers=auth(), timeout=30) as c,
    ):
        before = c.post("/predict", json=body).json()
        bad = target.with_name(".bad.tmp")
        bad.write_bytes(b"PAR1 this is not parquet")
        os.replace(bad, target)
        assert wait_for(lambda: _health(url)["forecasts"]["error"] is not None)
        h = _health(url)
        assert "previous forecasts" in h["forecasts"]["error"] and h["status"] == "degraded"
        again = c.post("/predict", json=body)
        assert again.status_code == 200
        assert again.json()["predicted_sales"] == before["predicted_sales"]

        df = pl.read_parquet(api_home.home / "exports" / "forecasts.parquet").with_columns(
            (pl.col("predicted_sales") + 100.0).alias("predicted_sales"),
            pl.lit("7").alias("model_version"),
        )
        fx.write_forecasts(home.home, df)
        assert wait_for(lambda: c.post("/predict", json=body).json()["model_version"] == "7")
        got = c.post("/predict", json=body).json()
        assert got["predicted_sales"] == before["predicted_sales"] + 100.0
        h = _health(url)
        assert h["forecasts"]["error"] is None and h["status"] == "ok"


@pytest.mark.slow
def test_champion_swap_under_load(api_home: fx.Home, tmp_path: Path) -> None:
    """Requests keep succeeding while a broken, then a good champion appear; versions switch."""
    home = copy_home(api_home, tmp_path / "home")
    hist = {
        "item_id": "HOBBIES_1_002_WI_1",
        "date": (api_home.last_history_date - dt.timedelta(days=5)).isoformat(),
    }
    hor = {"item_id": "HOBBIES_1_002_WI_1", "date": api_home.first_horizon_date.isoformat()}
    seen: dict[str, list[str]] = defaultdict(list)
    failures: list[str] = []
    stop = threading.Event()

    with running_server({**home.env(), **RELOAD}) as url:

        def hammer(n: int) -> None:
            with httpx.Client(base_url=url, headers=auth(), timeout=30) as c:
                k = 0
                while not stop.is_set():
                    body = hist if (k + n) % 2 else hor
                    k += 1
                    try:
                        r = c.post("/predict", json=body)
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                        continue
                    out = r.json()
                    seen[f"{n}:{out['source']}"].append(out["model_version"])

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        try:
            # 1) a champion whose feature list does not match the features table: rejected
            fx.train_and_register(
                home.tracking_uri,
                home.features,
                seed=1,
                feature_columns_param=["wday", "no_such_feature"],
            )
            assert wait_for(
                lambda: (_health(url)["model"]["error"] or "").find("missing") >= 0, timeout=60
            )
            assert _health(url)["model"]["version"] == "1"
            # 2) a good champion and forecasts made with it: served without restart
            v3 = fx.train_and_register(home.tracking_uri, home.features, seed=2)
            fx.write_forecasts(
                home.home, fx.forecasts_from_model(home.features, v3, home.tracking_uri)
            )
            assert wait_for(
                lambda: all(any(v == v3 for v in vs) for vs in seen.values()) and len(seen) == 6,
                timeout=60,
            )
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        h = _health(url)
    assert not failures, failures[:5]
    assert v3 == "3" and h["model"]["version"] == "3" and h["model"]["error"] is None
    for key, versions in seen.items():
        assert versions[0] == "1", key
        first_new = versions.index("3")
        assert set(versions[first_new:]) == {"3"}, key  # never back to the old version
        assert set(versions) == {"1", "3"}, key
