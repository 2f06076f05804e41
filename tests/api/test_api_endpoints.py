"""Endpoint tests against the API served by uvicorn on a loopback port."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import numpy as np
import polars as pl
import pytest

from tests.api import helpers as fx


def _forecast_row(home: fx.Home, series: str, day: dt.date) -> dict:
    df = pl.read_parquet(home.home / "exports" / "forecasts.parquet")
    return df.filter((pl.col("id") == series) & (pl.col("date") == day)).row(0, named=True)


def test_root_health_docs_are_public(live_api: str) -> None:
    with httpx.Client(base_url=live_api, timeout=30) as c:
        root = c.get("/")
        assert root.status_code == 200
        assert root.json()["links"]["predict"] == "/predict"
        health = c.get("/health").json()
        assert health["live"] is True and health["ready"] is True and health["status"] == "ok"
        assert health["model"]["version"] == "1"
        assert health["forecasts"]["detail"]["rows"] == 16 * fx.HORIZON
        assert health["forecasts"]["age_seconds"] >= 0
        assert c.get("/health/ready").status_code == 200
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert {"/predict", "/predict/batch", "/model/info"} <= set(spec["paths"])
        assert "ApiKey" in spec["components"]["securitySchemes"]
        assert c.get("/metrics").status_code == 200


def test_predict_from_batch_forecasts_both_id_forms(
    client: httpx.Client, api_home: fx.Home
) -> None:
    day = api_home.first_horizon_date + dt.timedelta(days=3)
    want = _forecast_row(api_home, "FOODS_1_001_CA_1", day)
    for body in (
        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": day.isoformat()},
        {"item_id": "FOODS_1_001_CA_1", "date": day.isoformat()},
        {"item_id": "FOODS_1_001_CA_1", "store_id": "CA_1", "date": day.isoformat()},
        {"item_id": "FOODS_1_001_CA_1_evaluation", "date": day.isoformat()},
    ):
        r = client.post("/predict", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["item_id"] == "FOODS_1_001" and got["store_id"] == "CA_1"
        assert got["date"] == day.isoformat()
        assert got["source"] == "batch_forecast"
        assert got["predicted_sales"] == pytest.approx(want["predicted_sales"])
        assert got["prediction_interval"] == {"lower": want["lower"], "upper": want["upper"]}
        assert got["model_version"] == "1"
        ts = dt.datetime.fromisoformat(got["timestamp"].replace("Z", "+00:00"))
        assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 60


def test_predict_history_date_falls_back_to_model(client: httpx.Client, api_home: fx.Home) -> None:
    import mlflow.pyfunc

    day = api_home.last_history_date - dt.timedelta(days=10)
    r = client.post("/predict", json={"item_id": "HOBBIES_1_002_TX_1", "date": day.isoformat()})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["source"] == "model" and got["model_version"] == "1"
    mlflow.set_tracking_uri(api_home.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{fx.MODEL_NAME}/1")
    row = api_home.features.filter(
        (pl.col("id").cast(pl.String) == "HOBBIES_1_002_TX_1") & (pl.col("date") == day)
    ).select(fx.FEATURE_COLUMNS)
    want = float(np.asarray(model.predict(row.to_pandas()))[0])
    assert got["predicted_sales"] == pytest.approx(want, rel=1e-9)
    lo, hi = got["prediction_interval"]["lower"], got["prediction_interval"]["upper"]
    assert lo <= got["predicted_sales"] <= hi


def test_batch_mixes_sources_and_keeps_order(client: httpx.Client, api_home: fx.Home) -> None:
    h = api_home.first_horizon_date
    items = [
        {"item_id": "FOODS_3_090", "store_id": "WI_1", "date": h.isoformat()},
        {"item_id": "FOODS_3_090_WI_1", "date": (h - dt.timedelta(days=40)).isoformat()},
        {"item_id": "HOUSEHOLD_2_003_CA_2", "date": api_home.last_horizon_date.isoformat()},
    ]
    r = client.post("/predict/batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [o["source"] for o in out] == ["batch_forecast", "model", "batch_forecast"]
    assert [o["date"] for o in out] == [i["date"] for i in items]
    assert out[2]["store_id"] == "CA_2" and out[2]["item_id"] == "HOUSEHOLD_2_003"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (
            {"item_id": "FOODS_9_999", "store_id": "CA_1", "date": "2016-05-01"},
            404,
            "unknown item_id",
        ),
        (
            {"item_id": "FOODS_1_001", "store_id": "ZZ_9", "date": "2016-05-01"},
            404,
            "unknown store_id",
        ),
        ({"item_id": "FOODS_1_001", "date": "2016-05-01"}, 404, "store"),
        ({"item_id": "FOODS_1_001_CA_1", "date": "2015-12-31"}, 422, "before the data starts"),
        ({"item_id": "FOODS_1_001_CA_1", "date": "2016-06-30"}, 422, "beyond the forecast horizon"),
        (
            {"item_id": "FOODS_1_001_CA_1", "store_id": "TX_1", "date": "2016-05-01"},
            422,
            "ends with store",
        ),
        ({"item_id": "FOODS_1_001_CA_1", "date": 20160501}, 422, "ISO date"),
        ({"item_id": "FOODS_1_001_CA_1", "date": "2016-02-30"}, 422, "invalid calendar date"),
        ({"item_id": "FOODS_1_001_CA_1", "date": "01/05/2016"}, 422, "ISO date"),
        ({"item_id": 1001, "store_id": "CA_1", "date": "2016-05-01"}, 422, "item_id"),
        ({"item_id": "FOODS_1_001_CA_1", "date": "2016-05-01", "extra": 1}, 422, "extra"),
        ({"store_id": "CA_1", "date": "2016-05-01"}, 422, "item_id: Field required"),
        ([], 422, "invalid request"),
    ],
)
def test_predict_rejects_bad_requests_with_clear_4xx(
    client: httpx.Client, body: object, status: int, fragment: str
) -> None:
    r = client.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


def test_malformed_json_and_wrong_content_type(client: httpx.Client) -> None:
    r = client.post(
        "/predict",
        content=b'{"item_id": "FOODS_1_001_CA_1", "date": ',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "malformed JSON" in r.json()["detail"]
    r = client.post(
        "/predict",
        content=b"item_id=FOODS_1_001_CA_1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422 and "application/json" in r.json()["detail"]


def test_batch_limits(client: httpx.Client, api_home: fx.Home) -> None:
    one = {"item_id": "FOODS_1_001_CA_1", "date": api_home.first_horizon_date.isoformat()}
    ok = client.post("/predict/batch", json={"items": [one] * 10_000})
    assert ok.status_code == 200 and len(ok.json()) == 10_000
    too_many = client.post("/predict/batch", json={"items": [one] * 10_001})
    assert too_many.status_code in (413, 422) and "10000" in too_many.json()["detail"]
    assert client.post("/predict/batch", json={"items": []}).status_code == 422
    big = b'{"items": [' + b" " * 3_000_000 + b"]}"
    r = client.post("/predict/batch", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    bad = [one, {"item_id": "NOPE_1", "store_id": "CA_1", "date": one["date"]}]
    r = client.post("/predict/batch", json={"items": bad})
    assert r.status_code == 404 and r.json()["detail"].startswith("items[1]:")


def test_info_model_info_and_importance(client: httpx.Client, api_home: fx.Home) -> None:
    info = client.get("/info").json()
    assert info["ready"] is True and info["n_series"] == 16 and info["n_stores"] == 4
    assert info["forecast_first_date"] == api_home.first_horizon_date.isoformat()
    assert info["data_first_date"] == fx.FIRST_DATE.isoformat()
    mi = client.get("/model/info").json()
    assert mi["version"] == "1" and mi["feature_columns"] == list(fx.FEATURE_COLUMNS)
    assert mi["training_window"]["horizon"] == 28 and "wrmsse" in mi["metrics"]
    assert mi["smoke_test"].startswith("ok")
    imp = client.get("/model/features/importance").json()
    assert imp["source"] == "mlflow_artifact" and imp["model_version"] == "1"
    gains = [x["gain"] for x in imp["importances"]]
    assert gains == sorted(gains, reverse=True)
    assert sum(x["gain_share"] for x in imp["importances"]) == pytest.approx(1.0)


def test_request_id_and_metrics(live_api: str, client: httpx.Client, api_home: fx.Home) -> None:
    day = api_home.first_horizon_date.isoformat()
    r = client.post(
        "/predict",
        json={"item_id": "FOODS_1_001_CA_1", "date": day},
        headers={"X-Request-ID": "abc-123"},
    )
    assert r.headers["x-request-id"] == "abc-123"
    assert len(client.get("/info").headers["x-request-id"]) == 32
    text = httpx.get(f"{live_api}/metrics").text
    assert 'forecasting_api_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert "forecasting_api_request_duration_seconds_bucket" in text
    assert "forecasting_api_model_info{run_id=" in text and 'version="1"' in text
    assert 'forecasting_api_predictions_total{source="batch_forecast"}' in text
    assert "forecasting_api_ready 1.0" in text
    body = json.loads(client.post("/predict", json={"item_id": "x"}).text)
    assert "date" in body["detail"]
