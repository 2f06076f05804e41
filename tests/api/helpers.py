"""Contract-shaped test data for the API and the store: exports, features, MLflow champion.

Builds, under a folder used as ``FORECASTING_HOME``:

* ``assets/features.parquet`` – a tiny features table keyed by id, d, date (history + 28
  horizon days, ``sales`` null on the horizon) with a few numeric feature columns;
* ``exports/forecasts.parquet`` – the forecasts export (``forecasting_assets.export_schemas``) for the horizon days;
* ``mlflow.db`` – a SQLite MLflow store with experiment ``m5-forecasting`` and a LightGBM
  model registered as ``m5_demand_model`` with alias ``champion``.

Imported by qualified name (``from tests.api import helpers as fx``) by the API tests, their
conftest and ``benchmarks/bench_api.py`` (``make_forecasts_full_scale``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from forecasting_assets.contracts import EXPERIMENT_NAME, HORIZON, MODEL_NAME
from forecasting_assets.modeling.quantiles import QUANTILES, quantile_column

STORES = ("CA_1", "CA_2", "TX_1", "WI_1")
ITEMS = ("FOODS_1_001", "FOODS_3_090", "HOBBIES_1_002", "HOUSEHOLD_2_003")
FIRST_DATE = dt.date(2016, 1, 1)
N_HISTORY = 120
FEATURE_COLUMNS = ("wday", "month", "sell_price", "lag_28", "rmean_28")


@dataclass(frozen=True)
class Home:
    """A materialized fixture home."""

    home: Path
    tracking_uri: str
    features: pl.DataFrame

    @property
    def last_history_date(self) -> dt.date:
        return FIRST_DATE + dt.timedelta(days=N_HISTORY - 1)

    @property
    def first_horizon_date(self) -> dt.date:
        return FIRST_DATE + dt.timedelta(days=N_HISTORY)

    @property
    def last_horizon_date(self) -> dt.date:
        return FIRST_DATE + dt.timedelta(days=N_HISTORY + HORIZON - 1)

    def env(self) -> dict[str, str]:
        """Environment variables that point a process at this home."""
        return {"FORECASTING_HOME": str(self.home), "MLFLOW_TRACKING_URI": self.tracking_uri}


def series_ids(items: tuple[str, ...] = ITEMS, stores: tuple[str, ...] = STORES) -> list[str]:
    return [f"{i}_{s}" for s in stores for i in items]


def make_features(
    items: tuple[str, ...] = ITEMS, stores: tuple[str, ...] = STORES, seed: int = 0
) -> pl.DataFrame:
    """Features table: one row per series x day (history + horizon)."""
    rng = np.random.default_rng(seed)
    n_days = N_HISTORY + HORIZON
    dates = [FIRST_DATE + dt.timedelta(days=k) for k in range(n_days)]
    frames = []
    for s in stores:
        for i in items:
            level = rng.uniform(0.5, 6.0)
            wday = np.array([(d.weekday() + 2) % 7 + 1 for d in dates], dtype=np.int8)
            sales = rng.poisson(level * (1 + 0.3 * (wday >= 6)), n_days).astype(np.int32)
            frames.append(
                pl.DataFrame(
                    {
                        "id": f"{i}_{s}",
                        "item_id": i,
                        "store_id": s,
                        "d": np.arange(1, n_days + 1, dtype=np.int16),
                        "date": dates,
                        "wday": wday,
                        "month": np.array([d.month for d in dates], dtype=np.int8),
                        "sell_price": np.full(n_days, rng.uniform(1, 9), dtype=np.float32),
                        "sales": sales,
                    }
                )
            )
    ids = series_ids(items, stores)
    df = pl.concat(frames).with_columns(
        pl.when(pl.col("d") > N_HISTORY).then(None).otherwise(pl.col("sales")).alias("sales")
    )
    df = df.with_columns(
        pl.col("sales").shift(28).over("id").cast(pl.Float32).alias("lag_28"),
    ).with_columns(
        pl.col("lag_28")
        .rolling_mean(28, min_samples=1)
        .over("id")
        .cast(pl.Float32)
        .alias("rmean_28")
    )
    return df.with_columns(
        pl.col("id").cast(pl.Enum(ids)),
        pl.col("item_id").cast(pl.Enum(list(items))),
        pl.col("store_id").cast(pl.Enum(list(stores))),
    )


def forecasts_from_points(
    ids: list[str],
    dates: list[dt.date],
    points: np.ndarray,
    model_version: str,
    exact: bool = True,
) -> pl.DataFrame:
    """Contract-shaped forecasts export (Poisson quantiles around the points).

    ``exact=False`` uses a normal approximation (fast, for the full-scale benchmark data).
    """
    from scipy.stats import norm, poisson

    points = np.clip(np.asarray(points, dtype=np.float64), 0.0, None)
    item_ids = [i.rsplit("_", 2)[0] for i in ids]
    store_ids = ["_".join(i.rsplit("_", 2)[1:]) for i in ids]
    cols: dict[str, object] = {
        "id": ids,
        "item_id": item_ids,
        "store_id": store_ids,
        "date": dates,
        "predicted_sales": points,
    }
    if exact:
        qs = {quantile_column(q): poisson.ppf(q, points).astype(np.float64) for q in QUANTILES}
    else:
        sd = np.sqrt(points)
        qs = {
            quantile_column(q): np.maximum(np.round(points + norm.ppf(q) * sd), 0.0)
            for q in QUANTILES
        }
    cols["lower"] = qs["q100"]
    cols["upper"] = qs["q900"]
    cols |= qs
    cols["model_version"] = [model_version] * len(ids)
    return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date))


def write_forecasts(home: Path, df: pl.DataFrame) -> Path:
    """Write the forecasts export atomically (temp file + rename)."""
    out = home / "exports" / "forecasts.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".forecasts.{os.getpid()}.tmp")
    df.write_parquet(tmp)
    os.replace(tmp, out)
    return out


def train_and_register(
    tracking_uri: str,
    features: pl.DataFrame,
    seed: int = 0,
    rounds: int = 20,
    set_champion: bool = True,
    feature_columns_param: list[str] | None = None,
) -> str:
    """Train a small LightGBM, log it as an MLflow model, register it; return the version."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    hist = features.filter(pl.col("sales").is_not_null() & pl.col("lag_28").is_not_null())
    x = hist.select(FEATURE_COLUMNS).to_pandas()
    y = hist["sales"].to_numpy()
    booster = lgb.train(
        {
            "objective": "poisson",
            "verbose": -1,
            "num_leaves": 7,
            "seed": seed,
            "learning_rate": 0.1 + 0.05 * seed,
            "min_data_in_leaf": 5,
        },
        lgb.Dataset(x, y),
        num_boost_round=rounds,
    )
    exp = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    if exp is None:  # artifacts next to the DB, never ./mlruns in the working directory
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        mlflow.create_experiment(
            EXPERIMENT_NAME, artifact_location=(db.parent / "mlartifacts").as_uri()
        )
        exp = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    with mlflow.start_run(experiment_id=exp.experiment_id) as run:
        mlflow.log_params(
            {
                "train_start_d": int(hist["d"].min()),
                "train_end_d": int(hist["d"].max()),
                "horizon": HORIZON,
                "feature_columns": json.dumps(feature_columns_param or list(FEATURE_COLUMNS)),
                "objective": "poisson",
            }
        )
        mlflow.log_metrics(
            {
                "wrmsse": 0.8 - 0.01 * seed,
                "wrmsse_seasonal_naive": 1.0,
                "wrmsse_ratio": 0.8 - 0.01 * seed,
                "mae": 1.2,
                "rmse": 1.9,
                "bias": 0.01,
            }
        )
        mlflow.set_tag("data_version", "fixture")
        gain = booster.feature_importance("gain")
        split = booster.feature_importance("split")
        mlflow.log_dict(
            {
                f: {"gain": float(g), "split": int(s)}
                for f, g, s in zip(FEATURE_COLUMNS, gain, split, strict=True)
            },
            "feature_importance.json",
        )
        signature = infer_signature(x.head(20), booster.predict(x.head(20)))
        info = mlflow.lightgbm.log_model(
            booster, name="model", signature=signature, pip_requirements=["lightgbm"]
        )
    mv = mlflow.register_model(info.model_uri, MODEL_NAME)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if set_champion:
        client.set_registered_model_alias(MODEL_NAME, "champion", mv.version)
    del run
    return str(mv.version)


def forecasts_from_model(features: pl.DataFrame, version: str, tracking_uri: str) -> pl.DataFrame:
    """Horizon forecasts computed with registered model ``version``."""
    import mlflow.pyfunc

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    hor = features.filter(pl.col("sales").is_null()).sort("id", "date")
    pts = np.asarray(model.predict(hor.select(FEATURE_COLUMNS).to_pandas()), dtype=np.float64)
    return forecasts_from_points(
        hor["id"].cast(pl.String).to_list(), hor["date"].to_list(), pts, version
    )


def build_home(
    root: Path,
    with_model: bool = True,
    with_forecasts: bool = True,
    features: pl.DataFrame | None = None,
) -> Home:
    """Materialize the fixture home under ``root`` (``features`` default: :func:`make_features`)."""
    home = Path(root).resolve()
    (home / "assets").mkdir(parents=True, exist_ok=True)
    (home / "exports").mkdir(parents=True, exist_ok=True)
    features = make_features() if features is None else features
    features.write_parquet(home / "assets" / "features.parquet")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    if with_model:
        version = train_and_register(uri, features, seed=0)
        if with_forecasts:
            write_forecasts(home, forecasts_from_model(features, version, uri))
    elif with_forecasts:
        hor = features.filter(pl.col("sales").is_null()).sort("id", "date")
        write_forecasts(
            home,
            forecasts_from_points(
                hor["id"].cast(pl.String).to_list(),
                hor["date"].to_list(),
                hor["rmean_28"].fill_null(0).to_numpy(),
                "1",
            ),
        )
    return Home(home=home, tracking_uri=uri, features=features)


def make_forecasts_full_scale(
    n_series: int = 30_490,
    horizon: int = HORIZON,
    start: dt.date = dt.date(2016, 5, 23),
    seed: int = 0,
    model_version: str = "1",
) -> pl.DataFrame:
    """Synthetic forecasts export at full M5 scale (30,490 series x 28 days = 853,720 rows)."""
    rng = np.random.default_rng(seed)
    stores = [f"{st}_{k}" for st, n in (("CA", 4), ("TX", 3), ("WI", 3)) for k in range(1, n + 1)]
    per_store = -(-n_series // len(stores))
    cats = (("FOODS", 3), ("HOBBIES", 2), ("HOUSEHOLD", 2))
    items = [f"{c}_{(k % n) + 1}_{k:03d}" for k in range(per_store) for c, n in cats][:per_store]
    ids = [f"{i}_{s}" for s in stores for i in items][:n_series]
    level = rng.gamma(0.6, 2.5, len(ids))
    ids_rep = np.repeat(np.array(ids, dtype=object), horizon).tolist()
    dates = [start + dt.timedelta(days=k) for k in range(horizon)] * len(ids)
    points = np.repeat(level, horizon) * rng.uniform(0.8, 1.2, len(ids) * horizon)
    return forecasts_from_points(ids_rep, dates, points, model_version, exact=False)


# --------------------------------------------------------------------------- servers
KEYS = ("test-key-1", "test-key-2")


def copy_home(src: Home, dst: Path) -> Home:
    """A private copy that a test may modify (the registry DB is copied too)."""
    shutil.copytree(src.home, dst, dirs_exist_ok=True)
    return Home(home=dst, tracking_uri=f"sqlite:///{dst / 'mlflow.db'}", features=src.features)


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def running_server(env: dict[str, str], timeout: float = 120.0) -> Iterator[str]:
    """Start the app (settings from ``env``) with uvicorn in a thread; yield its base URL."""
    import uvicorn

    base = {
        "FORECASTING_API_AUTH": "on",
        "FORECASTING_API_KEYS": ",".join(KEYS),
        "FORECASTING_API_RATE_LIMIT": "off",
        "FORECASTING_API_RELOAD_SECONDS": "0",
        "FORECASTING_API_ACCESS_LOG": "off",
        "FORECASTING_API_LOG_LEVEL": "WARNING",
        "FORECASTING_API_CORS_ORIGINS": "",
        "FORECASTING_API_KEYS_FILE": "",
    }
    with patched_env({**base, **env}):
        from forecasting_api.main import create_app

        app = create_app()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()


def auth(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def register_pipeline_model(tracking_uri: str, features: pl.DataFrame, seed: int = 0) -> str:
    """Register the pipeline's own pyfunc (``LightGBMDemandModel``, ``booster_global_direct.txt`` and
    its conformal calibration) trained on ``features``; make it the champion; return the version.
    """
    import tempfile

    import lightgbm as lgb
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from forecasting_assets.modeling.family import GLOBAL, DemandModel, ModelFamily
    from forecasting_assets.modeling.predict import LightGBMDemandModel, write_model_artifacts
    from forecasting_assets.modeling.quantiles import ConformalQuantiles
    from forecasting_assets.modeling.spec import ModelSpec

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    hist = features.filter(pl.col("sales").is_not_null() & pl.col("lag_28").is_not_null())
    spec = ModelSpec(list(FEATURE_COLUMNS), [], {})
    x = spec.to_matrix(hist)
    y = hist["sales"].to_numpy()
    booster = lgb.train(
        {"objective": "poisson", "verbose": -1, "num_leaves": 7, "seed": seed},
        lgb.Dataset(x, y, feature_name=list(FEATURE_COLUMNS)),
        num_boost_round=20,
    )
    model = ModelFamily({GLOBAL: DemandModel({"direct": [booster]}, {"direct": spec})}, {})
    pred = model.predict(hist)
    calibration = ConformalQuantiles.fit(pred, y, n_bins=4).to_dict()
    exp = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=exp.experiment_id):
        mlflow.log_params({"feature_columns": json.dumps(list(FEATURE_COLUMNS))})
        arts = write_model_artifacts(Path(tmp) / "model", model, calibration)
        example = spec.input_frame(hist.head(5))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=LightGBMDemandModel(),
            artifacts=arts,
            signature=infer_signature(example, model.predict(hist.head(5))),
            pip_requirements=["lightgbm", "polars", "numpy", "pandas", "mlflow"],
        )
    mv = mlflow.register_model(info.model_uri, MODEL_NAME)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(MODEL_NAME, "champion", mv.version)
    return str(mv.version)


def set_champion(tracking_uri: str, version: str) -> None:
    """Point the champion alias at ``version``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(MODEL_NAME, "champion", version)


@contextlib.contextmanager
def server_process(
    env: dict[str, str], log: Path, timeout: float = 180.0, ready: bool = False
) -> Iterator[tuple]:
    """``uvicorn forecasting_api.main:app`` as a child process; yield ``(url, process)``.

    A crash of the server (e.g. a segfault) then shows as the process' exit code instead of
    killing the test session. ``ready``: also wait until ``/health`` says ready.
    """
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTING_API_")}
    full |= {
        "FORECASTING_API_KEYS": ",".join(KEYS),
        "FORECASTING_API_RATE_LIMIT": "off",
        "FORECASTING_API_RELOAD_SECONDS": "0",
        "FORECASTING_API_ACCESS_LOG": "off",
        **env,
    }
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                uvicorn,
                "forecasting_api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,  # uvicorn puts its working directory first on sys.path
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                r = httpx.get(f"{url}/health", timeout=5)
                if r.status_code == 200 and (r.json()["ready"] or not ready):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
                proc.wait()


def model_files(tracking_uri: str, version: str) -> Path:
    """The stored artifact folder of registered ``version`` (where the server reads it from)."""
    from urllib.parse import unquote, urlparse

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = client.get_model_version_download_uri(MODEL_NAME, version)
    return Path(unquote(urlparse(location).path))
