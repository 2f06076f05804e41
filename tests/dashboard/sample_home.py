"""The contract-shaped data the dashboard tests (and the benchmark) read.

:func:`build_home` writes, under a FORECASTING_HOME folder, what the pipeline materializes and the
dashboard reads (the names of ``forecasting_assets.contracts``): ``assets/sales_long.parquet``,
``assets/raw_calendar.parquet`` and the ``exports/`` files, and optionally a tiny MLflow SQLite
store. Scales from a few series (tests) to full M5 size (30,490 series, ~60M sales_long rows) for
``benchmarks/bench_dashboard.py`` (``from tests.dashboard import sample_home``). Synthetic and
seeded; the fixtures built on it are in this folder's ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from forecasting_assets import contracts

START = dt.date(2011, 1, 29)
HORIZON = contracts.HORIZON
STORES = ["CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3"]
DEPTS = {  # items per department in the real M5 data (3,049 in all)
    "HOBBIES_1": 416,
    "HOBBIES_2": 149,
    "HOUSEHOLD_1": 532,
    "HOUSEHOLD_2": 515,
    "FOODS_1": 216,
    "FOODS_2": 398,
    "FOODS_3": 823,
}
QUANTILES = [0.005, 0.025, 0.05, 0.1, 0.165, 0.25, 0.5, 0.75, 0.835, 0.9, 0.95, 0.975, 0.995]
QCOLS = [f"q{round(q * 1000):03d}" for q in QUANTILES]
EVENTS = {  # (month, day): (name, type)
    (1, 1): ("NewYear", "National"),
    (2, 14): ("ValentinesDay", "Cultural"),
    (5, 27): ("MemorialDay", "National"),
    (6, 19): ("Father's day", "Cultural"),
    (7, 4): ("IndependenceDay", "National"),
    (9, 5): ("LaborDay", "National"),
    (10, 31): ("Halloween", "Cultural"),
    (11, 24): ("Thanksgiving", "National"),
    (12, 25): ("Christmas", "National"),
}
SNAP_DAYS = {
    "CA": set(range(1, 11)),
    "TX": {1, 3, 5, 6, 7, 9, 11, 12, 13, 15},
    "WI": {2, 3, 5, 6, 8, 9, 11, 12, 14, 15},
}
BASELINES = ["seasonal_naive", "naive", "moving_average", "ses", "croston_sba"]
LEVELS = list(contracts.M5_LEVELS)


@dataclass(frozen=True)
class SampleSpec:
    """Size of the sample: items per department (None = real M5 counts), stores and history days."""

    items_per_dept: int | None = 3
    stores: tuple[str, ...] = ("CA_1", "TX_1", "WI_1")
    n_days: int = 400
    seed: int = 7


def _series(spec: SampleSpec) -> pl.DataFrame:
    rows = []
    for store in spec.stores:
        for dept, n in DEPTS.items():
            for k in range(1, (spec.items_per_dept or n) + 1):
                item = f"{dept}_{k:03d}"
                rows.append((f"{item}_{store}", item, dept, dept.split("_")[0], store, store[:2]))
    cols = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
    df = pl.DataFrame(rows, schema=cols, orient="row")
    return df.with_columns(pl.col(c).cast(pl.Enum(df[c].unique(maintain_order=True))) for c in cols)


def calendar(n_days: int) -> pl.DataFrame:
    """Calendar rows for the history days plus the horizon (d, date, week, events, SNAP flags)."""
    total = n_days + HORIZON
    dates = [START + dt.timedelta(days=i) for i in range(total)]
    ev = [EVENTS.get((x.month, x.day), (None, None)) for x in dates]
    out = pl.DataFrame(
        {
            "d": pl.Series(range(1, total + 1), dtype=pl.Int16),
            "date": dates,
            "wm_yr_wk": pl.Series([11101 + i // 7 for i in range(total)], dtype=pl.Int16),
            "wday": pl.Series([i % 7 + 1 for i in range(total)], dtype=pl.Int8),
            "month": pl.Series([x.month for x in dates], dtype=pl.Int8),
            "year": pl.Series([x.year for x in dates], dtype=pl.Int16),
            "event_name_1": [e[0] for e in ev],
            "event_type_1": [e[1] for e in ev],
            "event_name_2": pl.Series([None] * total, dtype=pl.String),
            "event_type_2": pl.Series([None] * total, dtype=pl.String),
        }
    )
    for st_ in ("CA", "TX", "WI"):
        out = out.with_columns(
            pl.Series(f"snap_{st_}", [int(x.day in SNAP_DAYS[st_]) for x in dates], dtype=pl.Int8)
        )
    return out


def _rates(
    series: pl.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = series.height
    cat = series["cat_id"].cast(pl.String).to_numpy()
    base = rng.lognormal(mean=np.where(cat == "FOODS", 0.6, -0.4), sigma=0.9, size=n)
    price = np.round(rng.uniform(0.5, 20.0, size=n), 2)
    launch = np.where(rng.random(n) < 0.2, rng.integers(1, 300, size=n), 1)
    return base, price, launch


WEEKLY = np.array([1.25, 1.2, 0.9, 0.85, 0.85, 0.9, 1.05])  # wday 1 (Saturday) .. 7 (Friday)


def _sales_long_chunk(
    series: pl.DataFrame,
    cal: pl.DataFrame,
    base: np.ndarray,
    price: np.ndarray,
    launch: np.ndarray,
    n_days: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    n, t = series.height, cal.height
    wday = cal["wday"].to_numpy().astype(int) - 1
    trend = 1.0 + 0.15 * np.sin(np.arange(t) / 365.25 * 2 * np.pi)
    lam = base[:, None] * WEEKLY[wday][None, :] * trend[None, :]
    d = np.arange(1, t + 1)
    launched = d[None, :] >= launch[:, None]
    sales = np.where(launched, rng.poisson(lam), 0).astype(np.int32)
    week_idx = (d - 1) // 7
    price_grid = price[:, None] * (1 + 0.05 * ((week_idx[None, :] // 26) % 3 == 2))
    on_sale = d[None, :] >= (launch[:, None] - launch[:, None] % 7)
    grid = series.join(cal, how="cross")
    state = grid["state_id"].cast(pl.String)
    snap = (
        pl.when(state == "CA")
        .then(pl.col("snap_CA"))
        .when(state == "TX")
        .then(pl.col("snap_TX"))
        .otherwise(pl.col("snap_WI"))
    )
    is_hist = (d <= n_days)[None, :].repeat(n, axis=0).ravel()
    return (
        grid.with_columns(
            snap.alias("snap"),
            pl.Series(
                "sell_price", np.where(on_sale, price_grid, np.nan).ravel(), dtype=pl.Float32
            ).fill_nan(None),
            pl.Series("sales", sales.ravel(), dtype=pl.Int32),
            pl.Series("is_launched", launched.ravel()),
            pl.Series("_hist", is_hist),
        )
        .with_columns(pl.when(pl.col("_hist")).then(pl.col("sales")).alias("sales"))
        .select(
            "id",
            "item_id",
            "dept_id",
            "cat_id",
            "store_id",
            "state_id",
            "d",
            "date",
            "wm_yr_wk",
            "wday",
            "month",
            "year",
            "event_name_1",
            "event_type_1",
            "event_name_2",
            "event_type_2",
            "snap",
            "sell_price",
            "sales",
            "is_launched",
        )
    )


def build_home(
    home: Path, spec: SampleSpec = SampleSpec(), mlflow: bool = False
) -> dict[str, object]:
    """Write sales_long, raw_calendar and every export under ``home``; return a small summary."""
    rng = np.random.default_rng(spec.seed)
    assets, exports = home / "assets", home / "exports"
    assets.mkdir(parents=True, exist_ok=True)
    exports.mkdir(parents=True, exist_ok=True)
    series = _series(spec)
    base, price, launch = _rates(series, rng)
    cal = calendar(spec.n_days)
    cal.write_parquet(assets / contracts.RAW_CALENDAR_FILE)
    grid_cal = cal.drop("snap_CA", "snap_TX", "snap_WI").join(
        cal.select("d", "snap_CA", "snap_TX", "snap_WI"), on="d"
    )
    chunk = 2000
    tmp = Path(tempfile.mkdtemp(dir=assets, prefix=".sales_long_"))
    try:
        for i, lo in enumerate(range(0, series.height, chunk)):
            hi = min(lo + chunk, series.height)
            part = _sales_long_chunk(
                series[lo:hi], grid_cal, base[lo:hi], price[lo:hi], launch[lo:hi], spec.n_days, rng
            )
            part.write_parquet(tmp / f"part_{i:05d}.parquet")
            del part
        pl.scan_parquet(sorted(tmp.glob("part_*.parquet"))).sink_parquet(
            assets / contracts.SALES_LONG_FILE
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_exports(exports, series, cal, base, price, spec, rng)
    summary: dict[str, object] = {"series": series.height, "stores": len(spec.stores)}
    if mlflow:
        summary["mlflow_uri"] = build_mlflow(home)
    return summary


PLAN_DAYS = 364 + 28 + 14
"""History days of the plan's distribution (the pipeline's window: fit + level window + L + R)."""


def _history_matrix(path: Path, n: int, days: int) -> np.ndarray:
    """(series, days) sales of the last ``days`` history days, NaN before launch; rows in the
    order of the ``id`` Enum (the order of :func:`_series`)."""
    lf = pl.scan_parquet(path).filter(pl.col("sales").is_not_null())
    last = lf.select(pl.col("date").max()).collect().item()
    first = last - dt.timedelta(days=days - 1)
    rows = (
        lf.filter(pl.col("date") >= first, pl.col("is_launched"))
        .select(pl.col("id").to_physical(), "date", "sales")
        .collect()
    )
    matrix = np.full((n, days), np.nan)
    col = (rows["date"] - first).dt.total_days().to_numpy()
    matrix[rows["id"].to_numpy().astype(np.int64), col] = rows["sales"].to_numpy()
    return matrix


def _write_exports(
    exports: Path,
    series: pl.DataFrame,
    cal: pl.DataFrame,
    base: np.ndarray,
    price: np.ndarray,
    spec: SampleSpec,
    rng: np.random.Generator,
) -> None:
    hz = cal.filter(pl.col("d") > spec.n_days)
    wday = hz["wday"].to_numpy().astype(int) - 1
    lam = np.maximum(
        base[:, None] * WEEKLY[wday][None, :] * rng.uniform(0.9, 1.1, (series.height, 1)), 1e-3
    )
    n, h = lam.shape
    flat = lam.ravel()
    fc = pl.DataFrame(
        {
            "id": np.repeat(series["id"].cast(pl.String).to_numpy(), h),
            "item_id": np.repeat(series["item_id"].cast(pl.String).to_numpy(), h),
            "store_id": np.repeat(series["store_id"].cast(pl.String).to_numpy(), h),
            "date": np.tile(hz["date"].to_numpy(), n),
            "predicted_sales": flat,
        }
    )
    qv = stats.poisson.ppf(np.array(QUANTILES)[:, None], flat[None, :]).astype(np.float64)
    fc = fc.with_columns(pl.Series(c, qv[i]) for i, c in enumerate(QCOLS))
    fc = fc.with_columns(lower=pl.col("q100"), upper=pl.col("q900"), model_version=pl.lit("3"))
    fc = fc.select(
        "id",
        "item_id",
        "store_id",
        "date",
        "predicted_sales",
        "lower",
        "upper",
        *QCOLS,
        "model_version",
    )
    fc.write_parquet(exports / contracts.FORECASTS_FILE)

    hier = series.with_columns(pl.col(c).cast(pl.String) for c in series.columns)
    f2 = fc.select("id", "date", "predicted_sales").join(hier, on="id")
    aggs = []
    for level, col in [
        ("total", None),
        ("state", "state_id"),
        ("store", "store_id"),
        ("cat", "cat_id"),
        ("dept", "dept_id"),
    ]:
        keys = ["date"] if col is None else [col, "date"]
        g = f2.group_by(keys).agg(pl.col("predicted_sales").sum())
        g = g.with_columns(
            level=pl.lit(level),
            level_id=pl.lit("Total") if col is None else pl.col(col),
            lower=(pl.col("predicted_sales") - 1.2816 * pl.col("predicted_sales").sqrt()).clip(0),
            upper=pl.col("predicted_sales") + 1.2816 * pl.col("predicted_sales").sqrt(),
        )
        aggs.append(g.select("level", "level_id", "date", "predicted_sales", "lower", "upper"))
    pl.concat(aggs).sort("level", "level_id", "date").write_parquet(
        exports / contracts.FORECASTS_AGGREGATED_FILE
    )

    rows = []
    for mi, model in enumerate([contracts.MODEL_KEY, contracts.OUT_OF_FOLD_KEY, *BASELINES]):
        for fold in (1, 2, 3):
            for li, level in enumerate([*LEVELS, "all"]):
                w = 0.55 + 0.08 * mi + 0.02 * li + 0.01 * fold + float(rng.uniform(0, 0.03))
                bottom = level == "item_store"
                rows.append(
                    (
                        model,
                        fold,
                        level,
                        w,
                        1.1 + 0.05 * mi if bottom else None,
                        2.3 + 0.1 * mi if bottom else None,
                        0.02 * (mi - 2) if bottom else None,
                    )
                )
    pl.DataFrame(
        rows,
        schema={
            "model": pl.String,
            "fold": pl.Int64,
            "level": pl.String,
            "wrmsse": pl.Float64,
            "mae": pl.Float64,
            "rmse": pl.Float64,
            "bias": pl.Float64,
        },
        orient="row",
    ).write_parquet(exports / contracts.BACKTEST_METRICS_FILE)

    cov = [
        (contracts.MODEL_KEY, fold, "quantile", q, float(np.clip(q + rng.normal(0, 0.02), 0, 1)))
        for fold in (1, 2, 3)
        for q in QUANTILES
    ]
    cov += [
        (contracts.MODEL_KEY, fold, "interval", q, float(np.clip(q + rng.normal(0, 0.02), 0, 1)))
        for fold in (1, 2, 3)
        for q in (0.5, 0.8, 0.9, 0.95, 0.99)
    ]
    pl.DataFrame(
        cov,
        schema={
            "model": pl.String,
            "fold": pl.Int64,
            "kind": pl.String,
            "quantile": pl.Float64,
            "coverage": pl.Float64,
        },
        orient="row",
    ).write_parquet(exports / contracts.INTERVAL_COVERAGE_FILE)

    feats = [
        "lag_28",
        "lag_35",
        "rolling_mean_7",
        "rolling_mean_28",
        "rolling_std_28",
        "sell_price",
        "price_change_pct",
        "price_rel_item_mean",
        "wday",
        "month",
        "snap",
        "days_to_event",
        "item_id",
        "store_id",
        "dept_id",
    ]
    gains = np.sort(rng.gamma(2.0, 1000.0, len(feats)))[::-1]
    pl.DataFrame(
        {"feature": feats, "gain": gains, "split": (gains / 10).astype(np.int64)}
    ).write_parquet(exports / contracts.FEATURE_IMPORTANCE_FILE)

    psi = {f: float(v) for f, v in zip(feats, rng.uniform(0.0, 0.35, len(feats)), strict=True)}
    state = {f: "alert" if v >= 0.25 else "warn" if v >= 0.1 else "ok" for f, v in psi.items()}
    n_alert = sum(v == "alert" for v in state.values())
    drift = {  # the shape written by the drift_report asset
        "status": "alert" if n_alert >= 3 else "warn",
        "generated_at": "2016-05-22T06:00:00+00:00",
        "last_history_date": "2016-05-22",
        "feature_drift": {
            "status": "alert" if n_alert >= 3 else "warn",
            "alert_features": n_alert,
            "warn_features": sum(v == "warn" for v in state.values()),
            "thresholds": {"warn": 0.1, "alert": 0.25, "min_alert_features": 3},
        },
        "features": [{"name": f, "psi": v, "status": state[f]} for f, v in psi.items()]
        + [{"name": "constant_feature", "psi": None, "status": "ok"}],
        "prediction_drift": {"available": True, "status": "ok"},
        "realized_accuracy": None,
    }
    (exports / contracts.DRIFT_REPORT_FILE).write_text(json.dumps(drift, indent=2))

    # The plan as the pipeline computes it (default parameters: 7-day lead time and review).
    from forecasting_assets.inventory import plan_inventory
    from forecasting_assets.inventory.demand import demand_distribution

    keys = series.select(pl.col("id", "item_id", "store_id", "dept_id").cast(pl.String))
    keys = keys.with_columns(unit_price=pl.Series(price))
    history = _history_matrix(exports.parent / "assets" / contracts.SALES_LONG_FILE, n, PLAN_DAYS)
    dist = demand_distribution(keys, history, fc, pl.Series([14] * n))
    plan_inventory(dist).write_parquet(exports / contracts.INVENTORY_PLAN_FILE)
    check = {
        "method": "periodic review (R, S) simulated on history",
        "series_sampled": n,
        "levels": [
            {
                "target": t,
                "achieved_cycle_service_level": t - 0.01,
                "fill_rate": 0.98,
                "cycles": 400,
                "within_tolerance": True,
            }
            for t in (0.9, 0.95, 0.99)
        ],
    }
    (exports / contracts.INVENTORY_VALIDATION_FILE).write_text(json.dumps(check))

    alerts = [
        {
            "timestamp": "2016-05-21T02:00:00Z",
            "severity": "error",
            "job": "nightly_retrain",
            "run_id": "abc123",
            "message": "Run failed: step demand_model raised MemoryError",
        }
    ]
    (exports / contracts.ALERTS_FILE).write_text("".join(json.dumps(a) + "\n" for a in alerts))

    report = {
        "generated_at": "2016-05-22T05:00:00Z",
        "raw_dir": "/data/raw",
        "files": {
            "calendar.csv": {"rows": cal.height},
            "sales_train_evaluation.csv": {"rows": series.height},
            "sell_prices.csv": {"rows": 1000},
        },
        "checks": [
            {
                "name": "sales_non_negative",
                "asset": "raw_sales",
                "passed": True,
                "severity": "ERROR",
                "message": "all sales >= 0",
                "failing_rows": 0,
            },
            {
                "name": "prices_positive",
                "asset": "raw_prices",
                "passed": False,
                "severity": "WARN",
                "message": "sell_prices.csv column sell_price: 3 rows <= 0 (e.g. FOODS_1_001 CA_1 11101)",
                "failing_rows": 3,
            },
        ],
    }
    (exports / contracts.VALIDATION_REPORT_FILE).write_text(json.dumps(report, indent=2))


def build_mlflow(home: Path) -> str:
    """A tiny MLflow SQLite store: two training runs and a registered model with a champion alias."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment(
        contracts.EXPERIMENT_NAME, artifact_location=(home / "mlruns").resolve().as_uri()
    )
    client.create_registered_model(contracts.MODEL_NAME)
    for i, (w, sn) in enumerate([(0.71, 0.86), (0.66, 0.86)], start=1):
        run = client.create_run(exp, run_name=f"train-{i}", tags={"data_version": f"v{i}"})
        rid = run.info.run_id
        for k, v in {"train_start_d": 1, "train_end_d": 1913, "horizon": 28}.items():
            client.log_param(rid, k, v)
        for k, v in {
            "wrmsse": w,
            "wrmsse_seasonal_naive": sn,
            "wrmsse_ratio": w / sn,
            "mae": 1.1,
            "rmse": 2.2,
            "bias": 0.01,
        }.items():
            client.log_metric(rid, k, v)
        client.set_terminated(rid)
        mv = client.create_model_version(
            contracts.MODEL_NAME, source=f"runs:/{rid}/model", run_id=rid
        )
        client.set_registered_model_alias(
            contracts.MODEL_NAME, contracts.CHAMPION_ALIAS, mv.version
        )
    del mlflow
    return uri


SMALL = SampleSpec(items_per_dept=3, stores=("CA_1", "TX_1", "WI_1"), n_days=400)


def small_home(factory: pytest.TempPathFactory) -> Path:
    """Build the small test home once per session."""
    path = factory.getbasetemp() / "dash_home"
    if not (path / ".built").exists():
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        build_home(path, SMALL, mlflow=True)
        (path / ".built").touch()
    return path


def home_env(home: Path) -> dict[str, str]:
    """FORECASTING_HOME and its SQLite MLflow store."""
    return {"FORECASTING_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
