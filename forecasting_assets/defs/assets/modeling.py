"""Modeling and forecasting assets: ``baselines``, ``demand_model``, ``batch_forecasts`` + checks.

Thin Dagster wiring around :mod:`forecasting_assets.modeling` (pure maths and workflows).
Resources: ``"mlflow"`` (:class:`~forecasting_assets.defs.mlflow_resource.MLflowResource`).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from forecasting_assets.contracts import FEATURE_CATALOG_FILE, HORIZON
from forecasting_assets.defs.checks import check_result
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.modeling import forecast as fc
from forecasting_assets.modeling.backtest import (
    SEASONAL_LAGS,
    FoldPlan,
    backtest_baselines,
    build_panel,
    headline,
)
from forecasting_assets.modeling.baselines import BASELINES, STATISTICAL_BASELINES
from forecasting_assets.modeling.boosters import DEFAULT_PARAMS, DEFAULT_PART_PARAMS
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.inputs import ModelInputs
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE


class BacktestConfig(dg.Config):
    """Backtest folds of ``horizon`` days: the ``recent_folds`` windows ending at the last sales day
    plus the next forecast window's days ``seasonal_lags`` days back (one and two years)."""

    recent_folds: int = 4
    seasonal_lags: list[int] = Field(default_factory=lambda: list(SEASONAL_LAGS))
    horizon: int = HORIZON

    def fold_plan(self) -> FoldPlan:
        """As the pure fold plan."""
        return FoldPlan(self.recent_folds, tuple(self.seasonal_lags), self.horizon)


class BaselinesConfig(BacktestConfig):
    """The backtest folds, and which statsforecast baselines to score on them too."""

    statistical: list[str] = Field(default_factory=list)
    """Any of ``auto_ets``, ``theta`` (one model per series on its last 2 years: minutes per fold
    at M5 scale, so off by default)."""


class DemandModelConfig(BacktestConfig):
    """Training configuration of the LightGBM demand model family (the fields of
    :class:`~forecasting_assets.modeling.config.TrainingSettings`)."""

    train_start_d: int = 700
    """First day of the training window (d number)."""
    num_boost_round: int = 125
    """Most trees per part: the backtest keeps 25/50/75/100 % of them, whichever is best on the
    mean over the folds, per part."""
    recursive_boost_round: int | None = 50
    """Cap on the recursive part's trees (unset: ``num_boost_round``)."""
    learning_rate: float = float(DEFAULT_PARAMS["learning_rate"])
    num_leaves: int = int(DEFAULT_PARAMS["num_leaves"])
    min_data_in_leaf: int = int(DEFAULT_PARAMS["min_data_in_leaf"])
    objective: str = str(DEFAULT_PARAMS["objective"])
    tweedie_variance_power: float = float(DEFAULT_PARAMS["tweedie_variance_power"])
    recursive_tweedie_variance_power: float | None = float(
        DEFAULT_PART_PARAMS[RECURSIVE]["tweedie_variance_power"]
    )
    """The recursive part's own Tweedie variance power (unset: ``tweedie_variance_power``)."""
    extra_params_json: str = "{}"
    """Any other LightGBM parameters as a JSON object (override the defaults)."""
    part_params_json: str = "{}"
    """LightGBM parameters of one part only, as a JSON object part -> parameters (over the
    others; e.g. ``{"direct": {"lambda_l2": 10}}``)."""
    parts: list[str] = Field(default_factory=lambda: [DIRECT, RECURSIVE])
    direct_reads_origin: bool = True
    """The direct part also reads the recent sales means as of the forecast origin and the days
    ahead (horizon-aware) instead of lags >= 28 only."""
    recursive_weight: float | None = None
    """Weight of the recursive part in the blend; unset: chosen on the mean over the folds."""
    per_store_weights: bool = False
    """Refine the blend weight store by store (on the same mean over the folds)."""
    min_store_series: int = 0
    """Stores with at least this many series get their own model; the others share a global one
    (0: one global model, or one per store when its window would not fit in max_window_rows)."""
    part_min_store_series: dict[str, int] = Field(default_factory=dict)
    """min_store_series of one part only, part -> threshold (e.g. ``{"recursive": 1000}``: the
    big stores' own recursive parts next to a global direct part)."""
    fold_reuse_days: int = 0
    """A fold at most this many days after the last trained fold's origin reuses that model
    (fewer trainings, staler fold forecasts; 0: every fold trains its own)."""
    max_train_rows: int = 3_000_000
    """Train on a uniform sample of at most this many rows (0: all); bounds time at full scale."""
    part_max_train_rows: dict[str, int] = Field(default_factory=dict)
    """max_train_rows of one part only, part -> rows (shared by the members the same way)."""
    max_window_rows: int = 16_000_000
    """Start the window later if it would load more series-days (0: no bound)."""
    seed: int = 42
    seeds: int = 1
    """Boosters per part, averaged: each on its own row sample and LightGBM seed (seed, seed+1, ...)."""
    num_threads: int = 2

    def to_settings(self) -> TrainingSettings:
        """As the workflow's settings (every field but the LightGBM parameters maps by name)."""
        lgb_keys = ("learning_rate", "num_leaves", "min_data_in_leaf", "objective",
                    "tweedie_variance_power")  # fmt: skip
        params = {k: getattr(self, k) for k in lgb_keys} | json.loads(
            self.extra_params_json or "{}"
        )
        same = {f.name for f in fields(TrainingSettings)} & set(type(self).model_fields)
        values = {k: getattr(self, k) for k in same}
        values.update(seasonal_lags=tuple(self.seasonal_lags), parts=tuple(self.parts))
        power = self.recursive_tweedie_variance_power
        part_params = {} if power is None else {RECURSIVE: {"tweedie_variance_power": power}}
        for part, extra in json.loads(self.part_params_json or "{}").items():
            if part not in self.parts:
                raise ValueError(f"part_params_json names {part!r}, not one of {self.parts}")
            part_params[part] = part_params.get(part, {}) | extra
        return TrainingSettings(**values, params=params, part_params=part_params)


def _ratio_table(result: dict[str, Any]) -> str:
    """Per fold and on the mean: the ratio to seasonal naive, and the same with the trees and
    weights chosen on the other folds only."""
    held = result["out_of_fold_ratios"]
    lines = ["| fold | days | ratio to seasonal naive | chosen on the other folds |",
             "|---|---|---|---|"]  # fmt: skip
    for k, start, end in result["folds"]:
        oof = f"{held[str(k)]:.3f}" if str(k) in held else "-"
        lines.append(f"| {k} | d_{start}..d_{end} | {result['fold_ratios'][str(k)]:.3f} | {oof} |")
    mean_oof = result["wrmsse_ratio_out_of_fold"]
    lines.append(f"| **mean** | | **{result['wrmsse_ratio']:.3f}** "
                 f"({result['wrmsse_ratio_min']:.3f}-{result['wrmsse_ratio_max']:.3f}) | "
                 f"{'-' if mean_oof is None else f'{mean_oof:.3f}'} |")  # fmt: skip
    return "\n".join(lines)


@dg.asset(group_name="modeling", kinds={"numpy"})
def baselines(
    context: dg.AssetExecutionContext, config: BaselinesConfig, sales_long: pl.LazyFrame
) -> pl.DataFrame:
    """Naive, seasonal naive (weekly), 28-day moving average, exponential smoothing, Croston-SBA
    and TSB (plus statsforecast's AutoETS / Theta when configured), scored on the backtest folds
    with WRMSSE over the 12 M5 levels (the model's yardsticks).

    One row per model x fold x level (``level="all"`` is the WRMSSE), like backtest_metrics.parquet.
    """
    panel = build_panel(sales_long)
    folds = config.fold_plan().folds(panel.last_day, panel.first_day)
    unknown = set(config.statistical) - set(STATISTICAL_BASELINES)
    if unknown:
        raise dg.Failure(f"unknown statistical baselines {sorted(unknown)}: "
                         f"choose from {sorted(STATISTICAL_BASELINES)}")  # fmt: skip
    chosen = {name: STATISTICAL_BASELINES[name] for name in config.statistical}
    metrics = backtest_baselines(panel, folds, {**BASELINES, **chosen})
    heads = {m: headline(metrics, m) for m in metrics["model"].unique().sort().to_list()}
    context.add_output_metadata(
        {
            "folds": dg.MetadataValue.json([[f.k, f.start, f.end] for f in folds]),
            "wrmsse_ratio_mean": dg.MetadataValue.md(
                "\n".join(
                    ["| model | mean ratio to seasonal naive (min-max over folds) | mean WRMSSE |",
                     "|---|---|---|"]
                    + [f"| {m} | {h.ratio_mean:.3f} ({h.ratio_min:.3f}-{h.ratio_max:.3f}) "
                       f"| {h.wrmsse_mean:.4f} |"
                       for m, h in sorted(heads.items(), key=lambda kv: kv[1].ratio_mean)]
                )
            ),
        }
    )  # fmt: skip
    return metrics


DEMAND_MODEL_DOC = """LightGBM (Tweedie) blend of a direct model (lags >= 28) and a recursive one (recent
sales, fed back day by day), per store where a store has enough series and global otherwise,
backtested on the fold plan (recent windows plus the next window's days one and two years back;
target encodings recomputed per fold), trees and blend weights chosen on the mean WRMSSE ratio to
seasonal naive over the folds, scored next to every baseline, logged to MLflow (params, metrics,
importances, feature catalog, data version, pyfunc model), registered as ``m5_demand_model`` and
made ``champion`` only if it beats the current champion on the same folds. A promoted model
writes exports/backtest_metrics.parquet, backtest_forecasts.parquet and interval_coverage.parquet;
a rejected one leaves the champion's in place."""


def demand_model_asset(
    deps: Sequence[Any] = (), trained: Callable[[], Sequence[Any]] | None = None
) -> dg.AssetsDefinition:
    """The ``demand_model`` asset; ``trained`` returns groups trained elsewhere (the scale-out
    location's store partitions, reused when their plan matches)."""

    @dg.asset(name="demand_model", group_name="modeling", kinds={"lightgbm"}, deps=list(deps),
              description=DEMAND_MODEL_DOC)  # fmt: skip
    def _demand_model(
        context: dg.AssetExecutionContext,
        config: DemandModelConfig,
        mlflow: MLflowResource,
        home: PipelineHome,
        features: pl.LazyFrame,
        sales_long: pl.LazyFrame,
        baselines: pl.DataFrame,
    ) -> dict[str, Any]:
        from forecasting_assets.modeling.training import run_training  # mlflow: import on use

        inputs = ModelInputs()
        result = run_training(
            features, sales_long, inputs.feature_columns, inputs.categorical_columns,
            config.to_settings(), mlflow, home.exports_dir, encoder=inputs.encode,
            baseline_metrics=baselines, catalog_path=home.exports_dir / FEATURE_CATALOG_FILE,
            extra_columns=inputs.encoding_keys, trained=trained() if trained else (),
        )  # fmt: skip
        context.add_output_metadata(
            {
                "model_version": result.model_version,
                "promoted": result.promoted,
                "promotion_reason": result.promotion_reason,
                "wrmsse_ratio": result.wrmsse_ratio,
                "wrmsse_ratio_min": result.wrmsse_ratio_min,
                "wrmsse_ratio_max": result.wrmsse_ratio_max,
                **(
                    {}
                    if result.wrmsse_ratio_out_of_fold is None
                    else {"wrmsse_ratio_out_of_fold": result.wrmsse_ratio_out_of_fold}
                ),
                "folds": dg.MetadataValue.md(_ratio_table(result.to_dict())),
                "wrmsse": result.wrmsse,
                "wrmsse_seasonal_naive": result.wrmsse_seasonal_naive,
                "part_ratios": dg.MetadataValue.json(result.part_ratios),
                "baseline_ratios": dg.MetadataValue.json(result.baseline_ratios),
                "rounds": dg.MetadataValue.json(result.rounds),
                "recursive_weight": dg.MetadataValue.json(result.recursive_weight),
                "coverage_80": result.coverage_80,
                "wspl_ratio": result.wspl_ratio,
                "wspl_ratio_max": result.wspl_ratio_max,
                "mlflow_run_id": result.run_id,
                "seconds": dg.MetadataValue.json(result.seconds),
            }
        )
        return result.to_dict()

    return _demand_model


demand_model = demand_model_asset()


@dg.asset_check(
    asset=demand_model,
    description="Backtest WRMSSE below seasonal naive's on the mean over the folds.",
)
def demand_model_beats_seasonal_naive(demand_model: dict[str, Any]) -> dg.AssetCheckResult:
    """The model must beat seasonal naive on the mean over the backtest folds."""
    ratio = float(demand_model["wrmsse_ratio"])
    return dg.AssetCheckResult(
        passed=bool(ratio < 1.0),
        metadata={"wrmsse": float(demand_model["wrmsse"]),
                  "wrmsse_seasonal_naive": float(demand_model["wrmsse_seasonal_naive"]), "ratio": ratio,
                  "ratio_max": float(demand_model["wrmsse_ratio_max"])},
    )  # fmt: skip


@dg.asset_check(
    asset=demand_model,
    blocking=True,
    description="Backtest and horizon predictions are finite and >= 0.",
)
def demand_model_predictions_valid(demand_model: dict[str, Any]) -> dg.AssetCheckResult:
    """No NaN/inf and no negative prediction among the backtest and horizon forecasts."""
    stats = demand_model["prediction_stats"]
    bad = int(stats["n_non_finite"]) + int(stats["n_negative"])
    return dg.AssetCheckResult(
        passed=bad == 0 and stats["n"] > 0, metadata={k: float(v) for k, v in stats.items()}
    )


@dg.asset(group_name="forecasting", kinds={"lightgbm"}, deps=[demand_model])
def batch_forecasts(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    home: PipelineHome,
    features: pl.LazyFrame,
) -> pl.DataFrame:
    """The champion model's 28-day forecasts for every series, with quantiles (q005..q995) and the
    80 % interval. Writes exports/forecasts.parquet, forecasts_aggregated.parquet and
    feature_importance.parquet atomically, only after the hard checks passed (a failed run leaves
    the previous files in place).
    """
    from forecasting_assets.modeling.batch import run_batch_forecast

    inputs = ModelInputs()
    result = run_batch_forecast(
        features, mlflow, home.exports_dir, encoder=inputs.encode,
        extra_columns=inputs.encoding_keys,
    )  # fmt: skip
    context.add_output_metadata(
        {
            "model_version": result.model_version,
            "rows": result.forecasts.height,
            "series": result.forecasts["id"].n_unique(),
            "forecast_total": float(result.forecasts["predicted_sales"].sum()),
            "first_day": str(result.forecasts["date"].min()),
            "last_day": str(result.forecasts["date"].max()),
        }
    )
    return fc.export_frame(result.forecasts)


@dg.asset_check(
    asset=batch_forecasts, blocking=True, description="Every series has exactly 28 forecast days."
)
def forecasts_complete(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Exactly ``horizon`` days per series."""
    return check_result(fc.check_days_per_series(batch_forecasts))


@dg.asset_check(
    asset=batch_forecasts, blocking=True, description="Forecast values are finite and >= 0."
)
def forecasts_finite_non_negative(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Point forecasts, bounds and quantiles finite and non-negative."""
    return check_result(fc.check_finite_non_negative(batch_forecasts))


@dg.asset_check(
    asset=batch_forecasts,
    blocking=True,
    description="lower <= predicted_sales <= upper; quantiles ordered.",
)
def forecasts_interval_order(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Interval and quantile ordering."""
    return check_result(fc.check_interval_order(batch_forecasts))


@dg.asset_check(
    asset=batch_forecasts,
    additional_ins={"sales_long": dg.AssetIn("sales_long")},
    description="Forecast total within 0.2x..3x of the last 28 days' sales (no jump, no collapse).",
)
def forecasts_totals_plausible(
    batch_forecasts: pl.DataFrame, sales_long: pl.LazyFrame
) -> dg.AssetCheckResult:
    """Totals vs the last 28 history days."""
    lf = sales_long.lazy().filter(pl.col("sales").is_not_null())
    last = lf.select(pl.col("d").max()).collect().item()
    hist = lf.filter(pl.col("d") > last - 28).select(pl.col("sales").sum()).collect().item()
    return check_result(fc.check_totals_plausible(batch_forecasts, float(hist or 0.0)), warn=True)


MODELING_ASSETS = [baselines, demand_model, batch_forecasts]
MODELING_CHECKS = [
    demand_model_beats_seasonal_naive,
    demand_model_predictions_valid,
    forecasts_complete,
    forecasts_finite_non_negative,
    forecasts_interval_order,
    forecasts_totals_plausible,
]
