"""The batch forecast: the champion's 28-day forecasts for every series, written to the exports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import polars as pl

from forecasting_assets import contracts
from forecasting_assets.export_schemas import validate_export
from forecasting_assets.modeling import registry
from forecasting_assets.modeling.forecast import (
    aggregate_forecasts,
    export_frame,
    forecast_frame,
    hard_checks,
)
from forecasting_assets.modeling.predict import LightGBMDemandModel
from forecasting_assets.modeling.quantile_calibration import calibration_from_dict
from forecasting_assets.modeling.recent import CONTEXT_DAYS
from forecasting_assets.modeling.train import Encoder, history_matrix
from forecasting_assets.modeling.training import MLflowLike
from forecasting_assets.settings import write_parquet_atomic

logger = logging.getLogger(__name__)

HIERARCHY = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id", "date"]


@dataclass
class ForecastResult:
    """Forecast frame (with hierarchy columns) and what was written."""

    forecasts: pl.DataFrame
    aggregated: pl.DataFrame
    importance: pl.DataFrame
    model_version: str
    last_day: int


def run_batch_forecast(
    features: pl.LazyFrame | pl.DataFrame,
    mlflow_resource: MLflowLike,
    exports_dir: Path,
    encoder: Encoder | None = None,
    horizon: int = contracts.HORIZON,
    extra_columns: Sequence[str] = (),
) -> ForecastResult:
    """Forecast the days after the last sales day with the champion; write the exports.

    Hard checks (28 days per series, finite and >= 0 values, ordered bounds) run before any file is
    replaced, so a failed run leaves the previous forecasts in place.
    """
    client = mlflow_resource.client()
    champion = registry.get_champion(client)
    if champion is None:
        raise RuntimeError(
            f"no '{contracts.CHAMPION_ALIAS}' version of {contracts.MODEL_NAME}: "
            "materialize demand_model first"
        )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{contracts.MODEL_NAME}/{champion.version}")
    inner = pyfunc.unwrap_python_model()
    if not isinstance(inner, LightGBMDemandModel) or inner.model is None or not inner.calibration:
        raise TypeError("champion is not a LightGBMDemandModel with its members and calibration")
    model = inner.model
    mv = client.get_model_version(contracts.MODEL_NAME, champion.version)
    start_d = int((mv.tags or {}).get("train_start_d", 0))

    lf = features.lazy()
    last_day = int(
        lf.filter(pl.col("sales").is_not_null()).select(pl.col("d").max()).collect().item()
    )
    names = lf.collect_schema().names()
    extra = [c for c in extra_columns if c in names]
    table_cols = [c for c in model.input_columns if c in names]
    cols = list(dict.fromkeys([*HIERARCHY, "d", "sales", "is_launched", *table_cols, *extra]))
    # Only the horizon rows are read whole; the history and the encodings' window (the final
    # model's, from train_start_d) are read a few columns at a time: no copy of the window.
    rows = lf.filter(pl.col("d") > last_day).select(cols).collect().sort("id", "d")
    if encoder is not None:
        rows = encoder(rows, last_day, lf.filter(pl.col("d").is_between(start_d - CONTEXT_DAYS,
                                                                        last_day)))  # fmt: skip
    point = model.forecast(rows, history_matrix(lf, last_day))
    cal = calibration_from_dict(inner.calibration)
    forecasts = forecast_frame(rows, point, cal, champion.version)
    failed = [c for c in hard_checks(forecasts, horizon) if not c.passed]
    if failed:
        raise ValueError(
            "forecast checks failed, exports left unchanged: "
            + "; ".join(c.message for c in failed)
        )
    aggregated = aggregate_forecasts(forecasts, cal)
    importance = model.importance()
    exports_dir = Path(exports_dir)
    export = validate_export(contracts.FORECASTS_FILE, export_frame(forecasts))
    write_parquet_atomic(export, exports_dir / contracts.FORECASTS_FILE)
    write_parquet_atomic(aggregated, exports_dir / contracts.FORECASTS_AGGREGATED_FILE)
    write_parquet_atomic(importance, exports_dir / contracts.FEATURE_IMPORTANCE_FILE)
    logger.info("wrote %s forecast rows from champion v%s", forecasts.height, champion.version)
    return ForecastResult(forecasts, aggregated, importance, champion.version, last_day)
