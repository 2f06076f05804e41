"""Modeling benchmark: raw M5 files -> sales_long -> features -> baselines -> backtested, registered
LightGBM model -> batch forecasts, timed stage by stage.

Prints, on every backtest fold and as the mean with its spread, the WRMSSE ratio to seasonal naive
of the model, each of its parts, the model with its choices made on the other folds only
(``lightgbm_out_of_fold``) and every baseline; the mean WRMSSE per level; interval coverage;
wall time per stage and peak RSS.

    .venv/bin/python benchmarks/bench_modeling.py --raw-dir ../shared/m5
    .venv/bin/python benchmarks/bench_modeling.py --raw-dir ../shared/m5 --config '{"min_store_series": 300}'
    .venv/bin/python benchmarks/bench_modeling.py --raw-dir ../shared/m5 --statistical auto_ets,theta

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
        "--config",
        default="{}",
        help="DemandModelConfig fields as JSON, e.g. '{\"num_boost_round\": 200}'",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--statistical",
        default="",
        help="statsforecast baselines to score too, comma-separated (auto_ets, theta)",
    )
    args = ap.parse_args()

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench_modeling_"))
    os.environ["FORECASTING_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import polars as pl

    from forecasting_assets import contracts
    from forecasting_assets.defs.assets.modeling import DemandModelConfig
    from forecasting_assets.defs.mlflow_resource import MLflowResource
    from forecasting_assets.features.build import build_features
    from forecasting_assets.m5.readers import find_m5_files, read_calendar, read_prices, read_sales
    from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers
    from forecasting_assets.modeling.backtest import backtest_baselines, build_panel, headline
    from forecasting_assets.modeling.baselines import BASELINES, STATISTICAL_BASELINES
    from forecasting_assets.modeling.batch import run_batch_forecast
    from forecasting_assets.modeling.inputs import ModelInputs
    from forecasting_assets.modeling.training import run_training

    overrides = json.loads(args.config)
    unknown = sorted(set(overrides) - set(DemandModelConfig.model_fields))
    if unknown:  # the config model would ignore them silently
        ap.error(f"--config: not DemandModelConfig fields: {unknown}")
    cfg = DemandModelConfig(num_threads=args.threads, **overrides)
    statistical = [n for n in args.statistical.split(",") if n]
    if set(statistical) - set(STATISTICAL_BASELINES):
        ap.error(f"--statistical: choose from {sorted(STATISTICAL_BASELINES)}")
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
    folds = cfg.fold_plan().folds(panel.last_day, panel.first_day)
    base = backtest_baselines(
        panel, folds, {**BASELINES, **{n: STATISTICAL_BASELINES[n] for n in statistical}}
    )
    stages["baselines"] = time.perf_counter() - t

    inputs = ModelInputs()
    res = MLflowResource()
    exports = home / "exports"
    t = time.perf_counter()
    result = run_training(features, sales_long, inputs.feature_columns, inputs.categorical_columns,
                          cfg.to_settings(), res, exports, encoder=inputs.encode,
                          baseline_metrics=base, extra_columns=inputs.encoding_keys)  # fmt: skip
    stages["demand_model (backtest + final + mlflow)"] = time.perf_counter() - t
    t = time.perf_counter()
    fc = run_batch_forecast(features, res, exports, encoder=inputs.encode,
                            extra_columns=inputs.encoding_keys)  # fmt: skip
    stages["batch_forecasts"] = time.perf_counter() - t
    total = time.perf_counter() - t_all

    def run_artifact(name: str) -> pl.DataFrame:
        """This training's own export, from its MLflow run: ``exports/`` holds the champion's."""
        with tempfile.TemporaryDirectory() as tmp:
            return pl.read_parquet(res.client().download_artifacts(result.run_id, name, tmp))

    metrics = run_artifact("backtest_metrics.parquet")
    ratios = (
        metrics.filter(pl.col("level") == "all")
        .pivot(on="model", index="fold", values="wrmsse")
        .sort("fold")
    )
    models = [c for c in ratios.columns if c != "fold"]
    ratios = ratios.with_columns(
        [(pl.col(m) / pl.col("seasonal_naive")).alias(m) for m in models]
    ).with_columns(pl.Series("days", [f"d_{f.start}..d_{f.end}" for f in folds]))
    heads = {m: headline(metrics, m) for m in models}
    summary = pl.DataFrame(
        {
            "model": list(heads),
            "mean ratio": [h.ratio_mean for h in heads.values()],
            "min": [h.ratio_min for h in heads.values()],
            "max": [h.ratio_max for h in heads.values()],
            "mean WRMSSE": [h.wrmsse_mean for h in heads.values()],
        }
    ).sort("mean ratio")
    levels = (  # rows and columns in the metrics' own order, the same in every run
        metrics.group_by("model", "level", maintain_order=True)
        .agg(pl.col("wrmsse").mean())
        .pivot(on="model", index="level", values="wrmsse")
        .select("level", *models)
    )
    print(f"## Modeling benchmark ({args.raw_dir}, {panel.hierarchy.height} series, "
          f"config {cfg.model_dump_json()})\n")  # fmt: skip
    with pl.Config(tbl_rows=30, tbl_cols=20, float_precision=4, tbl_formatting="MARKDOWN",
                   tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_width_chars=250):  # fmt: skip
        print("WRMSSE ratio to seasonal naive per fold (lightgbm = the blend; its parts alone):")
        print(ratios.select("fold", "days", *models))
        print("\nMean over the folds, with the spread:")
        print(summary)
        print("\nMean WRMSSE over the folds per M5 level:")
        print(levels)
        cov = run_artifact("interval_coverage.parquet")
        print("\nInterval coverage per fold (each calibrated on the other folds):")
        print(
            cov.filter(pl.col("kind") == "interval")
            .pivot(on="fold", index="quantile", values="coverage")
            .sort("quantile")
        )
    if contracts.OUT_OF_FOLD_KEY in heads:
        print(f"\nchosen on the other folds only: {heads[contracts.OUT_OF_FOLD_KEY].describe()}")
    print(f"\nheadline: {heads['lightgbm'].describe()}; mean WRMSSE {result.wrmsse:.4f} vs "
          f"seasonal naive {result.wrmsse_seasonal_naive:.4f}; model v{result.model_version} "
          f"promoted={result.promoted}")  # fmt: skip
    wspl_folds = list(result.wspl["lightgbm"])
    wspl = pl.DataFrame(
        {"fold": wspl_folds, **{m: [v[f] for f in wspl_folds] for m, v in result.wspl.items()}}
    ).with_columns((pl.col("lightgbm") / pl.col("seasonal_naive")).alias("ratio_to_snaive"))
    with pl.Config(tbl_formatting="MARKDOWN", float_precision=4, tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True):  # fmt: skip
        print("\nWSPL (12 levels, nine M5 quantiles) per fold; fold k calibrated on the others:")
        print(wspl)
    print(
        f"WSPL ratio to seasonal naive: mean {result.wspl_ratio:.3f}, max {result.wspl_ratio_max:.3f}"
    )
    print(f"choices on the mean over folds: trees {result.rounds}, recursive weight "
          f"{result.recursive_weight}")  # fmt: skip
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
