"""Modeling and forecasting assets: ``baselines``, ``demand_model``, ``batch_forecasts`` + checks.

Thin Dagster wiring around :mod:`forecasting_assets.modeling` (pure maths and workflows).
Resources: ``"mlflow"`` (:class:`~forecasting_assets.defs.mlflow_resource.MLflowResource`).
"""

import json
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl

from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.modeling import forecast as fc
from forecasting_assets.modeling.backtest import backtest_baselines, build_panel, make_folds
from forecasting_assets.modeling.train import DEFAULT_PARAMS
from forecasting_assets.settings import get_settings

if TYPE_CHECKING:
    from forecasting_assets.modeling.workflow import TrainingSettings


def _features_api() -> tuple[list[str], list[str], Any, list[str]]:
    """Feature columns, categorical columns, per-fold encoder and the encoder's key columns."""
    from forecasting_assets.features.build import (
        add_target_encodings,
        categorical_columns,
        feature_columns,
    )
    from forecasting_assets.features.config import FeatureConfig

    cfg = FeatureConfig()

    def encoder(frame: pl.DataFrame, cutoff_d: int) -> pl.DataFrame:
        return add_target_encodings(frame, cutoff_d, cfg).collect()

    keys = sorted({k for ks in cfg.encoding_keys.values() for k in ks})
    cols = [c for c in feature_columns(cfg, "direct") if c not in UNUSED and not _dropped_lag(c)]
    return cols, categorical_columns(), encoder, keys


UNUSED: frozenset[str] = frozenset({"item_id"})
"""Feature-table columns the model skips: item_id (3,049 levels) is slow as a LightGBM categorical
and was no better than the item x store target encodings on the real M5 subset."""

MODEL_LAGS: tuple[int, ...] = (28, 29, 30, 35, 42)
"""Sales lags the model uses (the rolling means cover the rest; fewer columns train faster)."""


def _dropped_lag(column: str) -> bool:
    prefix = "sales_lag_"
    return (
        column.startswith(prefix)
        and column[len(prefix) :].isdigit()
        and int(column[len(prefix) :]) not in MODEL_LAGS
    )


class BacktestConfig(dg.Config):
    """Walk-forward folds: ``n_folds`` of ``horizon`` days, the last ending at the last sales day."""

    n_folds: int = 3
    horizon: int = 28


class DemandModelConfig(dg.Config):
    """Training configuration of the LightGBM demand model."""

    train_start_d: int = 700
    """First day of the training window (d number)."""
    n_folds: int = 3
    horizon: int = 28
    num_boost_round: int = 100
    learning_rate: float = float(DEFAULT_PARAMS["learning_rate"])
    num_leaves: int = int(DEFAULT_PARAMS["num_leaves"])
    min_data_in_leaf: int = int(DEFAULT_PARAMS["min_data_in_leaf"])
    objective: str = str(DEFAULT_PARAMS["objective"])
    tweedie_variance_power: float = float(DEFAULT_PARAMS["tweedie_variance_power"])
    extra_params_json: str = "{}"
    """Any other LightGBM parameters as a JSON object (override the defaults)."""
    recursive_weight: float = 0.5
    """Weight of the recursive part in the blend (0: direct model only, 1: recursive only)."""
    max_train_rows: int = 3_000_000
    """Train on a uniform sample of at most this many rows (0: all); bounds time at full scale."""
    max_window_rows: int = 16_000_000
    """Start the window later if it would load more series-days (0: no bound); bounds memory.
    Full M5 (30,490 series): the window then starts around d_1473 instead of d_700."""
    seed: int = 42
    num_threads: int = 2

    def to_settings(self) -> "TrainingSettings":
        """As the workflow's settings."""
        from forecasting_assets.modeling.workflow import TrainingSettings

        params = {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "objective": self.objective,
            "tweedie_variance_power": self.tweedie_variance_power,
            **json.loads(self.extra_params_json or "{}"),
        }
        return TrainingSettings(
            train_start_d=self.train_start_d, n_folds=self.n_folds, horizon=self.horizon,
            num_boost_round=self.num_boost_round, params=params,
            recursive_weight=self.recursive_weight, max_train_rows=self.max_train_rows,
            max_window_rows=self.max_window_rows,
            seed=self.seed,
            num_threads=self.num_threads,
        )  # fmt: skip


@dg.asset(group_name="modeling", kinds={"numpy"})
def baselines(
    context: dg.AssetExecutionContext, config: BacktestConfig, sales_long: pl.LazyFrame
) -> pl.DataFrame:
    """Naive, seasonal naive (weekly), 28-day moving average, exponential smoothing, Croston-SBA
    and TSB, scored walk-forward with WRMSSE over the 12 M5 levels (the model's yardsticks).

    One row per model x fold x level (``level="all"`` is the WRMSSE), like backtest_metrics.parquet.
    """
    panel = build_panel(sales_long)
    folds = make_folds(panel.last_day, config.n_folds, config.horizon)
    metrics = backtest_baselines(panel, folds)
    last = metrics.filter((pl.col("fold") == folds[-1].k) & (pl.col("level") == "all")).sort(
        "wrmsse"
    )
    context.add_output_metadata(
        {
            "folds": dg.MetadataValue.json([[f.k, f.origin + 1, f.end] for f in folds]),
            "wrmsse_last_fold": dg.MetadataValue.md(
                "\n".join(
                    ["| model | WRMSSE |", "|---|---|"]
                    + [f"| {m} | {w:.4f} |" for m, w in last.select("model", "wrmsse").iter_rows()]
                )
            ),
        }
    )
    return metrics


@dg.asset(group_name="modeling", kinds={"lightgbm"})
def demand_model(
    context: dg.AssetExecutionContext,
    config: DemandModelConfig,
    mlflow: MLflowResource,
    features: pl.LazyFrame,
    sales_long: pl.LazyFrame,
    baselines: pl.DataFrame,
) -> dict[str, Any]:
    """LightGBM (Tweedie) blend of a direct model (lags >= 28) and a recursive one (recent sales,
    fed back day by day), backtested walk-forward (one model per fold, target encodings
    recomputed per fold), scored with WRMSSE next to every baseline,
    logged to MLflow (params, metrics, importances, feature catalog, data version, pyfunc model),
    registered as ``m5_demand_model`` and made ``champion`` only if it beats the current champion
    on the same backtest. Writes exports/backtest_metrics.parquet and interval_coverage.parquet.
    """
    from forecasting_assets.modeling.workflow import run_training  # mlflow/lightgbm: import on use

    cols, cats, encoder, keys = _features_api()
    settings = get_settings()
    result = run_training(
        features, sales_long, cols, cats, config.to_settings(), mlflow,
        settings.exports_dir, encoder=encoder, baseline_metrics=baselines,
        catalog_path=settings.exports_dir / "feature_catalog.json", extra_columns=keys,
    )  # fmt: skip
    context.add_output_metadata(
        {
            "model_version": result.model_version,
            "promoted": result.promoted,
            "promotion_reason": result.promotion_reason,
            "wrmsse": result.wrmsse,
            "wrmsse_seasonal_naive": result.wrmsse_seasonal_naive,
            "wrmsse_ratio": result.wrmsse_ratio,
            "coverage_80": result.coverage_80,
            "mlflow_run_id": result.run_id,
            "seconds": dg.MetadataValue.json(result.seconds),
        }
    )
    return result.to_dict()


@dg.asset_check(
    asset=demand_model, description="Backtest WRMSSE (last fold) below seasonal naive's."
)
def demand_model_beats_seasonal_naive(demand_model: dict[str, Any]) -> dg.AssetCheckResult:
    """The model must beat seasonal naive on the most recent backtest fold."""
    ratio = float(demand_model["wrmsse_ratio"])
    return dg.AssetCheckResult(
        passed=bool(ratio < 1.0),
        metadata={"wrmsse": float(demand_model["wrmsse"]),
                  "wrmsse_seasonal_naive": float(demand_model["wrmsse_seasonal_naive"]), "ratio": ratio},
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
    context: dg.AssetExecutionContext, mlflow: MLflowResource, features: pl.LazyFrame
) -> pl.DataFrame:
    """The champion model's 28-day forecasts for every series, with quantiles (q005..q995) and the
    80 % interval. Writes exports/forecasts.parquet, forecasts_aggregated.parquet and
    feature_importance.parquet atomically, only after the hard checks passed (a failed run leaves
    the previous files in place).
    """
    from forecasting_assets.modeling.workflow import run_batch_forecast

    _, _, encoder, keys = _features_api()
    result = run_batch_forecast(
        features, mlflow, get_settings().exports_dir, encoder=encoder, extra_columns=keys
    )
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


def _result(
    outcome: fc.CheckOutcome, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
) -> dg.AssetCheckResult:
    meta = {
        k: (dg.MetadataValue.json(v) if isinstance(v, list | dict) else v)
        for k, v in outcome.metadata.items()
    }
    return dg.AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.description, metadata=meta
    )


@dg.asset_check(
    asset=batch_forecasts, blocking=True, description="Every series has exactly 28 forecast days."
)
def forecasts_complete(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Exactly ``horizon`` days per series."""
    return _result(fc.check_days_per_series(batch_forecasts))


@dg.asset_check(
    asset=batch_forecasts, blocking=True, description="Forecast values are finite and >= 0."
)
def forecasts_finite_non_negative(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Point forecasts, bounds and quantiles finite and non-negative."""
    return _result(fc.check_finite_non_negative(batch_forecasts))


@dg.asset_check(
    asset=batch_forecasts,
    blocking=True,
    description="lower <= predicted_sales <= upper; quantiles ordered.",
)
def forecasts_interval_order(batch_forecasts: pl.DataFrame) -> dg.AssetCheckResult:
    """Interval and quantile ordering."""
    return _result(fc.check_interval_order(batch_forecasts))


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
    return _result(
        fc.check_totals_plausible(batch_forecasts, float(hist or 0.0)), dg.AssetCheckSeverity.WARN
    )


MODELING_ASSETS = [baselines, demand_model, batch_forecasts]
MODELING_CHECKS = [
    demand_model_beats_seasonal_naive,
    demand_model_predictions_valid,
    forecasts_complete,
    forecasts_finite_non_negative,
    forecasts_interval_order,
    forecasts_totals_plausible,
]
