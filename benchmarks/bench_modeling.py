"""Modeling benchmark: raw M5 files -> sales_long -> features -> baselines -> backtested, registered
LightGBM model -> batch forecasts, timed stage by stage.

Prints the WRMSSE per level on the last backtest fold for the model and every baseline, the
ratio to seasonal naive, coverage of the quantiles, wall time per stage and peak RSS.

    .venv/bin/python benchmarks/bench_modeling.py --raw-dir /work/shared/m5
    .venv/bin/python benchmarks/bench_modeling.py --raw-dir /work/shared/m5 --train-start 1000 --rounds 300

MLflow and exports go to a temporary FORECASTING_HOME (``--home`` to keep them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--raw-dir", default="/work/shared/m5")
    ap.add_argument("--home", default=None, help="FORECASTING_HOME (default: a temp dir)")
    ap.add_argument(
        "--train-start",
        type=int,
        default=None,
        help="first training day (default: DemandModelConfig)",
    )
    ap.add_argument(
        "--rounds", type=int, default=None, help="boosting rounds (default: DemandModelConfig)"
    )
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench_modeling_"))
    os.environ["FORECASTING_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import polars as pl

    from forecasting_assets.defs.assets.modeling import DemandModelConfig, _features_api
    from forecasting_assets.defs.mlflow_resource import MLflowResource
    from forecasting_assets.features.build import build_features
    from forecasting_assets.m5.readers import find_m5_files, read_calendar, read_prices, read_sales
    from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers
    from forecasting_assets.modeling.backtest import backtest_baselines, build_panel, make_folds
    from forecasting_assets.modeling.workflow import run_batch_forecast, run_training

    stages: dict[str, float] = {}
    t_all = time.perf_counter()
    t = time.perf_counter()
    files = find_m5_files(Path(args.raw_dir))
    cal = calendar_with_day_numbers(read_calendar(files["calendar"]))  # type: ignore[arg-type]
    sales = read_sales(files["sales"])  # type: ignore[arg-type]
    prices = read_prices(files["prices"])  # type: ignore[arg-type]
    sales_long = build_sales_long(cal, sales, prices, horizon=28)
    del sales, prices
    stages["read + sales_long"] = time.perf_counter() - t

    t = time.perf_counter()
    built = build_features(sales_long)
    features = built.collect() if isinstance(built, pl.LazyFrame) else built
    stages["features"] = time.perf_counter() - t

    t = time.perf_counter()
    panel = build_panel(sales_long)
    folds = make_folds(panel.last_day, args.folds, 28)
    base = backtest_baselines(panel, folds)
    stages["baselines"] = time.perf_counter() - t

    cfg = DemandModelConfig(n_folds=args.folds, num_threads=args.threads)
    if args.train_start is not None:
        cfg = cfg.model_copy(update={"train_start_d": args.train_start})
    if args.rounds is not None:
        cfg = cfg.model_copy(update={"num_boost_round": args.rounds})
    cols, cats, encoder, keys = _features_api()
    res = MLflowResource()
    exports = home / "exports"
    t = time.perf_counter()
    result = run_training(features, sales_long, cols, cats, cfg.to_settings(), res, exports,
                          encoder=encoder, baseline_metrics=base, extra_columns=keys)  # fmt: skip
    stages["demand_model (backtest + final + mlflow)"] = time.perf_counter() - t
    t = time.perf_counter()
    fc = run_batch_forecast(features, res, exports, encoder=encoder, extra_columns=keys)
    stages["batch_forecasts"] = time.perf_counter() - t
    total = time.perf_counter() - t_all

    metrics = pl.read_parquet(exports / "backtest_metrics.parquet")
    last = folds[-1]
    table = (
        metrics.filter(pl.col("fold") == last.k)
        .pivot(on="model", index="level", values="wrmsse")
        .with_columns((pl.col("lightgbm") / pl.col("seasonal_naive")).alias("ratio_vs_snaive"))
    )
    print(f"## Modeling benchmark ({args.raw_dir}, {panel.hierarchy.height} series, "
          f"train from d_{cfg.train_start_d}, {cfg.num_boost_round} rounds, {args.threads} threads)\n")  # fmt: skip
    print(f"Last backtest fold {last.k}: d_{last.start}..d_{last.end} (origin d_{last.origin})\n")
    with pl.Config(tbl_rows=20, tbl_cols=20, float_precision=4, tbl_formatting="MARKDOWN",
                   tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):  # fmt: skip
        print(table)
        print()
        print("WRMSSE per fold (all levels):")
        print(
            metrics.filter(pl.col("level") == "all").pivot(
                on="model", index="fold", values="wrmsse"
            )
        )
        cov = pl.read_parquet(exports / "interval_coverage.parquet").filter(
            pl.col("fold") == last.k
        )
        print()
        print("Coverage on the last fold (calibrated on the other folds):")
        print(cov.select("kind", "quantile", "coverage", "coverage_strict"))
    print(f"\nheadline: WRMSSE {result.wrmsse:.4f} vs seasonal naive {result.wrmsse_seasonal_naive:.4f}"
          f" -> ratio {result.wrmsse_ratio:.3f}; model v{result.model_version} promoted={result.promoted}")  # fmt: skip
    print(
        f"forecasts: {fc.forecasts.height} rows, total {fc.forecasts['predicted_sales'].sum():,.0f}"
    )
    print("\nwall time (s):")
    for k, v in stages.items():
        print(f"  {k:45s} {v:8.1f}")
    print(f"  {'TOTAL raw files -> forecasts':45s} {total:8.1f}")
    print("  demand_model detail:", json.dumps({k: round(v, 1) for k, v in result.seconds.items()}))
    print(f"peak RSS: {_rss_gb():.2f} GB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
