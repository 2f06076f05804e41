"""A plain-text summary of what the pipeline produced, for the demo command and `make report`."""

import polars as pl

from forecasting_assets import contracts, store
from forecasting_assets.modeling.backtest import headline_table
from forecasting_assets.settings import Settings, get_settings


def summary(settings: Settings | None = None) -> str:
    """Describe every output that exists, with its path."""
    settings = settings or get_settings()
    lines = [f"Results in {settings.home}", f"  raw data: {settings.raw_dir}"]
    report = store.load_validation_report()
    if report:
        failed = [c for c in report.get("checks", []) if not c.get("passed")]
        lines.append(
            f"  validation: {len(report.get('checks', []))} checks, {len(failed)} not passed "
            f"({settings.exports_dir / contracts.VALIDATION_REPORT_FILE})"
        )
        lines += [f"    - [{c['severity']}] {c['message'][:160]}" for c in failed]
    metrics = store.load_backtest_metrics()
    if metrics is not None and metrics.height:
        with pl.Config(tbl_rows=20, tbl_hide_dataframe_shape=True, float_precision=3):
            lines.append(
                "  backtest WRMSSE ratio to seasonal naive, mean over the folds (lower is better):"
            )
            lines.append(str(headline_table(metrics)))
    champion = store.champion_info()
    if champion:
        lines.append(
            f"  champion model: {contracts.MODEL_NAME} version {champion.get('version')} "
            f"(MLflow {settings.mlflow_tracking_uri})"
        )
    forecasts = store.load_forecasts()
    if forecasts is not None:
        series, days = forecasts["id"].n_unique(), forecasts["date"].n_unique()
        units = forecasts["predicted_sales"].sum()
        lines.append(
            f"  forecasts: {series} series × {days} days, {units:,.0f} units in total "
            f"({settings.exports_dir / contracts.FORECASTS_FILE})"
        )
    drift = store.load_drift_report()
    if drift:
        path = settings.exports_dir / contracts.DRIFT_REPORT_FILE
        lines.append(f"  drift status: {drift.get('status')} ({path})")
    plan = store.load_inventory_plan()
    if plan is not None:
        path = settings.exports_dir / contracts.INVENTORY_PLAN_FILE
        lines.append(f"  inventory plan: {plan.height} series ({path})")
    lines.append("Next: `make ui` (Dagster UI), `make api`, `make dashboard`, `make mlflow-ui`.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())  # noqa: T201
