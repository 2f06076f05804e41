"""Benchmark of the inventory plan and the drift report at full M5 size (30,490 series).

Usage: .venv/bin/python benchmarks/bench_inventory.py [--series 30490] [--days 600]
       [--real ../shared/m5] [--home FORECASTING_HOME]

Prints medians of the pure plan, the inventory_plan and drift_report assets end to end on a
synthetic contract-shaped sales_long (scanned from Parquet, as the IO manager does), the peak RSS,
and the policy's achieved cycle service level / fill rate: on the real M5 subset with 28-day
moving-average forecasts, and, with ``--home`` (a home where ``m5_pipeline`` ran, e.g. on
``M5_RAW_DIR=../shared/m5``), on the model's own backtest folds, as the pipeline validates it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout, and its test helpers by qualified name


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_sales_long(
    n_series: int, n_hist: int, horizon: int = 28, seed: int = 0
) -> pl.DataFrame:
    """Contract-shaped sales_long (Enum ids) with negative-binomial demand, built from codes."""
    rng = np.random.default_rng(seed)
    total = n_hist + horizon
    stores = [f"S{i}" for i in range(10)]
    ids = [f"ITEM_{i // 10:05d}_{stores[i % 10]}" for i in range(n_series)]
    items = sorted({i.rsplit("_", 1)[0] for i in ids})
    mean = rng.gamma(0.6, 2.5, n_series)
    size = rng.uniform(0.5, 4.0, n_series)
    sales = rng.negative_binomial(size[:, None], (size / (size + mean))[:, None], (n_series, total))
    code = np.repeat(np.arange(n_series, dtype=np.uint32), total)

    start = dt.date(2015, 1, 1)
    dates = pl.date_range(start, start + dt.timedelta(days=total - 1), eager=True)
    series = pl.DataFrame(
        {
            "id": pl.Series(ids).cast(pl.Enum(ids)),
            "item_id": pl.Series([i.rsplit("_", 1)[0] for i in ids]).cast(pl.Enum(items)),
            "dept_id": pl.Series([f"D{i % 7}" for i in range(n_series)]).cast(
                pl.Enum([f"D{i}" for i in range(7)])
            ),
            "cat_id": pl.Series([f"C{i % 3}" for i in range(n_series)]).cast(
                pl.Enum([f"C{i}" for i in range(3)])
            ),
            "store_id": pl.Series([stores[i % 10] for i in range(n_series)]).cast(pl.Enum(stores)),
            "state_id": pl.Series([f"ST{i % 3}" for i in range(n_series)]).cast(
                pl.Enum([f"ST{i}" for i in range(3)])
            ),
            "sell_price": rng.uniform(0.5, 20, n_series).astype(np.float32),
        }
    )
    frame = series[code].with_columns(
        pl.Series("d", np.tile(np.arange(1, total + 1, dtype=np.int16), n_series)),
        pl.Series("date", np.tile(dates.to_numpy(), n_series)),
        pl.Series("sales", sales.ravel().astype(np.int32)),
        pl.lit(True).alias("is_launched"),
    )
    return frame.with_columns(pl.when(pl.col("d") <= n_hist).then(pl.col("sales")).alias("sales"))


def forecasts_for(sales_long: pl.DataFrame) -> pl.DataFrame:
    means = sales_long.group_by("id").agg(
        pl.col("sales").drop_nulls().tail(28).mean().alias("predicted_sales")
    )
    horizon = sales_long.filter(pl.col("sales").is_null()).select(
        "id", "item_id", "store_id", "date"
    )
    return horizon.join(means, on="id").with_columns(
        pl.col("id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("store_id").cast(pl.String),
        (pl.col("predicted_sales") * 0.5).alias("lower"),
        (pl.col("predicted_sales") * 1.6).alias("upper"),
        pl.lit("bench").alias("model_version"),
    )


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=30_490)
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "m5"
    )
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()

    from forecasting_assets.defs.assets.drift import DriftConfig, drift_report
    from forecasting_assets.defs.assets.inventory import InventoryConfig, inventory_plan
    from forecasting_assets.defs.resources import PipelineHome
    from forecasting_assets.inventory import backtest_order_up_to, level_folds, plan_inventory
    from forecasting_assets.inventory.plan import InventoryParams
    from forecasting_assets.inventory.validation import validate_on_backtest
    from tests.pipeline.sample_exports import write_fold_forecasts

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["FORECASTING_HOME"] = str(home)
        t0 = time.perf_counter()
        sales = synthetic_sales_long(args.series, args.days)
        path = home / "sales_long.parquet"
        sales.write_parquet(path)
        (home / "exports").mkdir()
        forecasts_for(sales).write_parquet(home / "exports" / "forecasts.parquet")
        write_fold_forecasts(home, sales, n_folds=6)
        print(
            f"fixture: {args.series} series x {args.days + 28} days = {sales.height:,} rows "
            f"({time.perf_counter() - t0:.1f} s to build)"
        )
        del sales

        rng = np.random.default_rng(1)
        dist = pl.DataFrame({
            "id": [f"s{i}" for i in range(args.series)],
            "mean_daily_demand": rng.gamma(0.6, 2.5, args.series),
            "dispersion": 1 + rng.gamma(1.0, 2.0, args.series),
            "unit_price": rng.uniform(0.5, 20, args.series),
        })  # fmt: skip
        t, _ = timed(lambda: plan_inventory(dist), args.repeat)
        print(f"plan_inventory (pure), {args.series} series: median {t:.3f} s")

        def run_plan() -> object:
            return inventory_plan(
                context=dg.build_asset_context(), config=InventoryConfig(),
                sales_long=pl.scan_parquet(path), home=PipelineHome(),
            )  # fmt: skip

        t, _ = timed(run_plan, args.repeat)
        plan = pl.read_parquet(home / "exports" / "inventory_plan.parquet")
        print(
            f"inventory_plan asset (incl. 1000-series validation): median {t:.2f} s, "
            f"{plan.height} rows"
        )

        lf = pl.scan_parquet(path)
        feats = lf.filter(pl.col("d") > args.days - 420).select(
            "id", "d", "sell_price",
            *[pl.col("sales").shift(28 + k).over("id").cast(pl.Float32).alias(f"sales_lag_{28 + k}")
              for k in range(8)],
        ).collect()  # fmt: skip
        fpath = home / "features.parquet"
        feats.write_parquet(fpath)
        del feats

        def run_drift() -> object:
            return drift_report(
                context=dg.build_asset_context(), config=DriftConfig(),
                sales_long=pl.scan_parquet(path), features=pl.scan_parquet(fpath),
                home=PipelineHome(),
            )  # fmt: skip

        t, _ = timed(run_drift, args.repeat)
        print(
            f"drift_report asset (9 features, 2000 sampled series; no realized accuracy): "
            f"median {t:.2f} s"
        )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")

    real = args.real / "sales_train_evaluation.csv.gz"
    if real.exists():
        wide = pl.read_csv(real)
        cols = [c for c in wide.columns if c.startswith("d_")][-(364 + 28 + 14 + 6 * 28) :]
        full = wide.select(cols).to_numpy().astype(float)
        first = np.where((full > 0).any(axis=1), (full > 0).argmax(axis=1), full.shape[1])
        full[np.arange(full.shape[1])[None, :] < first[:, None]] = np.nan
        t0 = time.perf_counter()
        table = backtest_order_up_to(full, level_folds(full, 6), (0.90, 0.95, 0.99))
        elapsed = time.perf_counter() - t0
        print(
            f"real M5 subset, 28-day moving-average forecasts: {wide.height} series, the last 6 "
            f"folds x 28 days, L=7, R=7 ({elapsed:.1f} s)"
        )
        for row in table.filter(pl.col("fold") == 0).iter_rows(named=True):
            print(
                f"  target {row['service_level']:.2f}: achieved CSL {row['cycle_service_level']:.4f}, "
                f"fill rate {row['fill_rate']:.4f} (expected {row['expected_fill_rate']:.4f}), "
                f"cycles {row['cycles']}"
            )
    if args.home is not None:
        t0 = time.perf_counter()
        summary = validate_on_backtest(
            pl.scan_parquet(args.home / "assets" / "sales_long.parquet"),
            args.home / "exports" / "backtest_forecasts.parquet",
            InventoryParams(),
        )
        folds = sorted({f["fold"] for f in summary["folds"]})
        print(
            f"model's backtest folds in {args.home}: {summary['series_sampled']} sampled series, "
            f"folds {folds}, L=7, R=7 ({time.perf_counter() - t0:.1f} s)"
        )
        for lv in summary["levels"]:
            print(
                f"  target {lv['target']:.2f}: achieved CSL "
                f"{lv['achieved_cycle_service_level']:.4f}, fill rate {lv['fill_rate']:.4f} "
                f"(expected {lv['expected_fill_rate']:.4f}), cycles {lv['cycles']}"
            )
        for f in summary["folds"]:
            print(
                f"    fold {f['fold']} target {f['service_level']:.2f}: CSL "
                f"{f['cycle_service_level']:.3f}, fill {f['fill_rate']:.3f}"
            )


if __name__ == "__main__":
    main()
