"""Fixtures of the pipeline tests: small contract-shaped sales_long, features and exports, and the
real PostgreSQL and Redis servers of :mod:`tests.pipeline.services`."""

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.pipeline import sample_exports
from tests.pipeline.services import Postgres, postgres_bin, postgres_server, redis_server

START = dt.date(2014, 1, 1)
STORES = ("CA_1", "TX_2")
ITEMS = ("FOODS_1_001", "FOODS_1_002", "FOODS_1_003", "HOBBIES_1_001", "HOBBIES_1_002")
QUANTILES = (
    "005",
    "025",
    "050",
    "100",
    "165",
    "250",
    "500",
    "750",
    "835",
    "900",
    "950",
    "975",
    "995",
)


def _sales_long(n_hist: int, horizon: int = 28, seed: int = 0) -> pl.DataFrame:
    """sales_long in the ingestion layout: history days + ``horizon`` days with null sales."""
    rng = np.random.default_rng(seed)
    total = n_hist + horizon
    rows = []
    for store in STORES:
        for k, item in enumerate(ITEMS):
            mean = 0.5 + 2.5 * k
            sales = rng.negative_binomial(2.0, 2.0 / (2.0 + mean), total).astype(np.int32)
            launch = 60 if k == 0 else 0  # one late launch: leading zeros are not demand
            sales[:launch] = 0
            dept = item.rsplit("_", 1)[0]
            rows.append(
                pl.DataFrame(
                    {
                        "id": f"{item}_{store}",
                        "item_id": item,
                        "dept_id": dept,
                        "cat_id": dept.split("_")[0],
                        "store_id": store,
                        "state_id": store.split("_")[0],
                        "d": np.arange(1, total + 1, dtype=np.int16),
                        "date": [START + dt.timedelta(days=i) for i in range(total)],
                        "wm_yr_wk": (11401 + np.arange(total) // 7).astype(np.int16),
                        "sell_price": np.full(total, 1.0 + k, dtype=np.float32),
                        "sales": pl.Series(sales).cast(pl.Int32),
                        "is_launched": np.arange(total) >= launch,
                    }
                )
            )
    df = pl.concat(rows)
    ids = df["id"].unique(maintain_order=True).to_list()
    return df.with_columns(
        pl.col("id").cast(pl.Enum(ids)),
        pl.when(pl.col("d") <= n_hist).then(pl.col("sales")).alias("sales"),
    )


def _features(sales_long: pl.DataFrame, drift_last_days: int = 0) -> pl.DataFrame:
    """A few feature columns keyed by id, d (recent window scaled ×4 when drift_last_days)."""
    last = sales_long.filter(pl.col("sales").is_not_null())["d"].max()
    feats = sales_long.select(
        "id", "d", "date", "store_id", "sell_price",
        pl.col("sales").shift(28).over("id").cast(pl.Float32).alias("sales_lag_28"),
        pl.col("sales").shift(28).rolling_mean(7).over("id").alias("sales_rmean_28_7"),
        pl.col("date").dt.month().cast(pl.Int8).alias("month"),
    )  # fmt: skip
    if drift_last_days:
        recent = pl.col("d") > last - drift_last_days
        feats = feats.with_columns(
            pl.when(recent).then(pl.col(c) * 4 + 3).otherwise(pl.col(c)).alias(c)
            for c in ("sales_lag_28", "sales_rmean_28_7", "sell_price")
        )
    return feats


def _write_forecasts(home: Path, sales_long: pl.DataFrame, version: str, scale: float = 1.0,
                    truth: pl.DataFrame | None = None) -> pl.DataFrame:  # fmt: skip
    """forecasts.parquet for the horizon days: per-series mean (or ``truth`` × ``scale``)."""
    horizon = sales_long.filter(pl.col("sales").is_null()).select(
        "id", "item_id", "store_id", "d", "date"
    )
    means = sales_long.group_by("id").agg(pl.col("sales").mean().alias("m"))
    fc = horizon.join(means, on="id")
    if truth is not None:
        fc = fc.join(
            truth.select("id", "d", pl.col("sales").alias("m2")), on=["id", "d"]
        ).with_columns(pl.col("m2").cast(pl.Float64).alias("m"))
    fc = fc.with_columns((pl.col("m") * scale).alias("predicted_sales"))
    qcols = [(pl.col("predicted_sales") * (0.2 + int(q) / 500)).alias(f"q{q}") for q in QUANTILES]
    fc = fc.with_columns(*qcols).with_columns(
        pl.col("id").cast(pl.String), pl.col("item_id").cast(pl.String), pl.col("store_id").cast(pl.String),
        pl.col("q100").alias("lower"), pl.col("q900").alias("upper"), pl.lit(version).alias("model_version"),
    ).select("id", "item_id", "store_id", "date", "predicted_sales", "lower", "upper",
             *[f"q{q}" for q in QUANTILES], "model_version")  # fmt: skip
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    fc.write_parquet(exports / "forecasts.parquet")
    return fc


def _write_backtest(home: Path, wrmsse: float) -> None:
    frame = pl.DataFrame(
        {
            "model": ["lightgbm"] * 3 + ["seasonal_naive"] * 3,
            "fold": [1, 2, 3] * 2,
            "level": ["all"] * 6,
            "wrmsse": [wrmsse] * 3 + [wrmsse * 1.5] * 3,
        }
    )
    (home / "exports").mkdir(parents=True, exist_ok=True)
    frame.write_parquet(home / "exports" / "backtest_metrics.parquet")


@pytest.fixture(scope="session")
def small_sales_long():
    """``(n_hist, horizon=28, seed=0) -> sales_long`` of 10 series (2 stores x 5 items)."""
    return _sales_long


@pytest.fixture(scope="session")
def small_features():
    """``(sales_long, drift_last_days=0) -> features`` (recent window scaled when drifting)."""
    return _features


@pytest.fixture(scope="session")
def write_forecasts():
    """``(home, sales_long, version, scale=1.0, truth=None)`` writes ``exports/forecasts.parquet``."""
    return _write_forecasts


@pytest.fixture(scope="session")
def write_fold_forecasts():
    """``(home, sales_long, n_folds=2)`` writes ``exports/backtest_forecasts.parquet``."""
    return sample_exports.write_fold_forecasts


@pytest.fixture(scope="session")
def write_backtest():
    """``(home, wrmsse)`` writes ``exports/backtest_metrics.parquet``."""
    return _write_backtest


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow

    db = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()  # creates + migrates
    return db


@pytest.fixture
def mlflow_store(home: Path, mlflow_template: Path) -> str:
    """``home``'s MLflow store, already migrated; returns its tracking URI."""
    shutil.copy(mlflow_template, home / "mlflow.db")
    return f"sqlite:///{home / 'mlflow.db'}"


# ------------------------------------------------------------------ PostgreSQL and Redis
# Throwaway PostgreSQL and Redis servers on free ports for the scale-out tests.
#
@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    """A running PostgreSQL server with the `dagster` and `mlflow` databases."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL binaries not installed (apt-get install -y postgresql)")
    with postgres_server() as server:
        yield server


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A running Redis server's URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    with redis_server() as url:
        yield url
