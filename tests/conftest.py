"""Shared fixtures: small generated M5 data, random ``sales_long`` frames and an isolated
FORECASTING_HOME per test."""

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_assets.m5.generator import generate_m5

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_M5 = REPO_ROOT.parent / "shared" / "m5"

TINY_SIZE = {"n_stores": 2, "items_per_dept": 3, "n_days": 400, "seed": 7}
"""42 series × 400 days: big enough for every rule, small enough for ~1 s per pipeline run."""


@pytest.fixture(scope="session")
def tiny_raw_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated M5-shaped files, made once per session; copy before modifying."""
    folder = tmp_path_factory.mktemp("tiny_raw")
    generate_m5(folder, **TINY_SIZE)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FORECASTING_HOME (with its own MLflow store) for one test."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("FORECASTING_HOME", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


@pytest.fixture
def raw_dir(home: Path, tiny_raw_source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, writable copy of the tiny raw files, set as M5_RAW_DIR."""
    folder = home / "raw"
    shutil.copytree(tiny_raw_source, folder)
    monkeypatch.setenv("M5_RAW_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def real_m5() -> Path:
    """The genuine M5 subset shipped beside the repo (../shared/m5)."""
    if not (REAL_M5 / "calendar.csv").exists():
        pytest.skip(f"real M5 subset not found at {REAL_M5}")
    return REAL_M5


@pytest.fixture(scope="session")
def make_sales_long() -> Callable[..., pl.DataFrame]:
    """Factory of small random frames in the ``sales_long`` layout (see its docstring)."""
    return _make_sales_long


_EVENTS = [("SuperBowl", "Sporting"), ("Easter", "Cultural"), ("Christmas", "National")]


def _make_sales_long(
    n_stores: int = 2,
    items_per_store: int = 4,
    n_days: int = 120,
    horizon: int = 28,
    seed: int = 0,
) -> pl.DataFrame:
    """A ``sales_long``-shaped frame (the ingestion dtypes), sorted by series then ``d``.

    Series get random launch days (leading zeros, ``is_launched`` False before the first sale),
    intermittent Poisson sales, weekly prices with gaps (null = not on sale) and a few events.
    """
    rng = np.random.default_rng(seed)
    states = ["CA", "TX", "WI"]
    stores = [f"{states[s % 3]}_{s // 3 + 1}" for s in range(n_stores)]
    depts = ["FOODS_1", "HOBBIES_1"]
    items = [f"{depts[i % 2]}_{i + 1:03d}" for i in range(items_per_store)]
    total = n_days + horizon
    start = dt.date(2011, 1, 29)
    dates = [start + dt.timedelta(days=i) for i in range(total)]
    d = np.arange(1, total + 1)
    week = 11101 + (d - 1) // 7
    ev_name: list[str | None] = [None] * total
    ev_type: list[str | None] = [None] * total
    for day in rng.choice(total, size=max(1, total // 30), replace=False):
        name, kind = _EVENTS[int(rng.integers(len(_EVENTS)))]
        ev_name[day], ev_type[day] = name, kind
    ev2_name: list[str | None] = [None] * total
    ev2_type: list[str | None] = [None] * total
    ev2_name[int(rng.integers(total))], ev2_type[int(rng.integers(total))] = "Unlisted", "Other"
    snap_by_state = {s: rng.integers(0, 2, total) for s in states}

    frames = []
    for store in stores:
        state = store.split("_")[0]
        for item in items:
            launch = int(rng.integers(0, n_days // 2)) if rng.random() < 0.6 else 0
            lam = float(rng.uniform(0.2, 6.0))
            sales = rng.poisson(lam, total).astype(np.int64)
            sales[:launch] = 0
            sales[launch] = max(1, sales[launch])
            n_weeks = int(week[-1] - week[0] + 1)
            wprice = np.round(rng.uniform(1.0, 9.0) * rng.choice([1.0, 0.9, 1.1], n_weeks), 2)
            on_sale = rng.random(n_weeks) > 0.1
            on_sale[: max(0, launch // 7 - 1)] = False
            price = np.where(on_sale, wprice, np.nan)[week - week[0]]
            frames.append(
                pl.DataFrame(
                    {
                        "id": f"{item}_{store}",
                        "item_id": item,
                        "dept_id": item.rsplit("_", 1)[0],
                        "cat_id": item.split("_")[0],
                        "store_id": store,
                        "state_id": state,
                        "d": d,
                        "date": dates,
                        "wm_yr_wk": week,
                        "wday": ((d - 1) % 7) + 1,
                        "month": [x.month for x in dates],
                        "year": [x.year for x in dates],
                        "event_name_1": ev_name,
                        "event_type_1": ev_type,
                        "event_name_2": ev2_name,
                        "event_type_2": ev2_type,
                        "snap": snap_by_state[state],
                        "sell_price": price,
                        "sales": sales,
                        "is_launched": np.arange(total) >= launch,
                    },
                    nan_to_null=True,
                )
            )
    df = pl.concat(frames)
    ids = {c: pl.Enum(df[c].unique(maintain_order=True).to_list()) for c in
           ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")}  # fmt: skip
    return df.with_columns(
        *[pl.col(c).cast(t) for c, t in ids.items()],
        pl.col("d").cast(pl.Int16),
        pl.col("wm_yr_wk").cast(pl.Int16),
        pl.col("wday").cast(pl.Int8),
        pl.col("month").cast(pl.Int8),
        pl.col("year").cast(pl.Int16),
        pl.col("snap").cast(pl.Int8),
        pl.col("sell_price").cast(pl.Float32),
        pl.when(pl.col("d") <= n_days).then(pl.col("sales")).cast(pl.Int32).alias("sales"),
    )
