"""Drift stage: the ``drift_report`` asset (the maths lives in ``forecasting_assets.monitoring``).

It reads the forecasts export written by ``batch_forecasts`` and writes, atomically,
``exports/drift_report.json`` and ``exports/forecast_archive/<model_version>_<first date>.parquet``
(+ a ``.json`` sidecar with the backtest WRMSSE known when the forecast was archived).
"""

import dagster as dg
import polars as pl

from forecasting_assets.contracts import DRIFT_REPORT_FILE
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.monitoring.prometheus import write_pipeline_metrics
from forecasting_assets.monitoring.report import (
    DriftParams,
    compute_drift_report,
    top_features_markdown,
)
from forecasting_assets.settings import json_safe, write_json

GROUP = "monitoring"


class DriftConfig(dg.Config, DriftParams):
    """Windows and thresholds of the drift report."""


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "json"},
    deps=[dg.AssetKey("batch_forecasts")],
    ins={
        "sales_long": dg.AssetIn(key="sales_long"),
        "features": dg.AssetIn(key="features"),
    },
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    sales_long: pl.LazyFrame,
    features: pl.LazyFrame,
    home: PipelineHome,
) -> dg.MaterializeResult:
    """Drift report (`exports/drift_report.json`): PSI per feature (last 28 history days against
    the 364 days before), drift of the predictions (vs recent actuals and the previous forecast),
    and the realized WRMSSE of an archived forecast once its actuals arrived, against its
    backtest WRMSSE. Status ok / warn / alert from configurable thresholds; the retrain sensor
    reads it. The current forecasts are archived under `exports/forecast_archive/`."""
    exports = home.exports_dir
    report = compute_drift_report(sales_long, features, config, exports)
    path = exports / DRIFT_REPORT_FILE
    write_json(path, report)
    write_pipeline_metrics(report, exports)
    context.log.info("drift_report: status %s", report["status"])
    realized = report["realized_accuracy"]
    return dg.MaterializeResult(
        metadata={
            "path": str(path),
            "status": report["status"],
            "feature_status": report["feature_drift"]["status"],
            "alert_features": report["feature_drift"]["alert_features"],
            "prediction_status": report["prediction_drift"]["status"],
            "realized_status": realized["status"] if realized else "n/a",
            "realized_degradation": dg.MetadataValue.float(
                float(realized["degradation"])
                if realized and realized["degradation"] is not None
                else float("nan")
            ),
            "top_features": dg.MetadataValue.md(top_features_markdown(report)),
            "report": dg.MetadataValue.json(json_safe(report)),
        }
    )
