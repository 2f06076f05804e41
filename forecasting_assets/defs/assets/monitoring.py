"""Monitoring stage: ``drift_report`` and ``inventory_plan`` assets and their checks.

Thin Dagster wiring around the pure modules :mod:`forecasting_assets.monitoring` and
:mod:`forecasting_assets.inventory`. Both assets read the forecasts export written by
``batch_forecasts`` (``exports/forecasts.parquet``) and write their own exports atomically:

* ``exports/drift_report.json`` (+ ``exports/forecast_archive/<model_version>_<first date>.parquet``
  and a ``.json`` sidecar with the backtest WRMSSE known when the forecast was archived);
* ``exports/inventory_plan.parquet`` and ``exports/inventory_validation.json`` (the walk-forward
  simulation of the policy on history).
"""

import json
import logging
import math
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from forecasting_assets.inventory import (
    backtest_order_up_to,
    classify_demand,
    demand_statistics,
    fit_protection_dispersion,
    plan_inventory,
    resolve_parameters,
)
from forecasting_assets.monitoring import (
    STATUSES,
    feature_drift_status,
    prediction_drift,
    psi_table,
    status_from_value,
    worst_status,
)
from forecasting_assets.monitoring.prometheus import write_pipeline_metrics
from forecasting_assets.settings import atomic_write, get_settings

logger = logging.getLogger(__name__)

GROUP = "monitoring"
FORECASTS_FILE = "forecasts.parquet"
BACKTEST_FILE = "backtest_metrics.parquet"
DRIFT_FILE = "drift_report.json"
ARCHIVE_DIR = "forecast_archive"
PLAN_FILE = "inventory_plan.parquet"
VALIDATION_FILE = "inventory_validation.json"
ID_COLS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
NON_FEATURES = {*ID_COLS, "d", "date", "wm_yr_wk", "sales", "is_launched"}

PLAN_COLUMNS = (
    "id", "item_id", "store_id", "dept_id", "demand_class", "adi", "cv2", "mean_daily_demand",
    "dispersion", "lead_time_days", "review_days", "service_level", "expected_demand_lt_review",
    "safety_stock", "reorder_point", "order_up_to", "eoq", "expected_units_short_per_cycle",
    "expected_fill_rate", "expected_on_hand", "expected_holding_cost", "expected_stockout_cost",
    "expected_ordering_cost", "expected_total_cost", "unit_price",
)  # fmt: skip
"""Columns of ``inventory_plan.parquet``, in order."""
NON_NEGATIVE = (
    "mean_daily_demand", "expected_demand_lt_review", "reorder_point", "order_up_to", "eoq",
    "expected_holding_cost", "expected_stockout_cost", "unit_price",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Shared readers
# ---------------------------------------------------------------------------------------------


def last_history_day(sales_long: pl.LazyFrame) -> tuple[int, date]:
    """(d, date) of the last day with known sales."""
    row = (
        sales_long.filter(pl.col("sales").is_not_null())
        .select(pl.col("d").max().alias("d"), pl.col("date").max().alias("date"))
        .collect()
    )
    if row["d"][0] is None:
        raise dg.Failure("sales_long has no day with known sales")
    return int(row["d"][0]), row["date"][0]


def history_window(
    sales_long: pl.LazyFrame, days: int, ids: list[str] | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """Last ``days`` history days of every series (or of ``ids``) as a matrix.

    Returns ``(series, matrix)``: ``series`` has one row per series, sorted by id (hierarchy ids
    as strings, ``unit_price`` = last known price in the window); ``matrix`` ``(n, days)`` holds
    sales with NaN before launch or where a day is missing. The hierarchy is read on the last
    history day (``sales_long`` is a complete series × day grid).
    """
    last_d, _ = last_history_day(sales_long)
    first_d = last_d - days + 1
    schema = sales_long.collect_schema()
    names = schema.names()
    hier = [c for c in ID_COLS if c in names]
    lf = sales_long.filter(pl.col("d").is_between(first_d, last_d) & pl.col("sales").is_not_null())
    if ids is not None:
        lf = lf.filter(id_in(schema["id"], ids))
    launched = pl.col("is_launched") if "is_launched" in names else pl.lit(True)
    price = pl.col("sell_price") if "sell_price" in names else pl.lit(None, pl.Float32)
    rows = lf.select(
        *hier,
        (pl.col("d").cast(pl.Int32) - first_d).alias("_c"),
        pl.when(launched).then(pl.col("sales").cast(pl.Float64)).alias("sales"),
        price.cast(pl.Float64).alias("sell_price"),
    ).collect()
    keys = rows.filter(pl.col("_c") == days - 1).select(hier)
    order = keys.with_columns(pl.col("id").cast(pl.String).alias("_key")).sort("_key")
    if isinstance(rows.schema["id"], pl.Enum | pl.Categorical):
        codes = order["id"].to_physical().to_numpy().astype(np.int64)
        lookup = np.full(int(codes.max()) + 2 if codes.size else 1, -1, dtype=np.int64)
        lookup[codes] = np.arange(codes.size)
        physical = rows["id"].to_physical().to_numpy().astype(np.int64)
        r = lookup[np.minimum(physical, lookup.size - 1)]
    else:
        index = order.select(pl.col("id").cast(rows.schema["id"])).with_row_index("_r")
        r = rows.select("id").join(index, on="id", how="left", maintain_order="left")["_r"]
        r = r.fill_null(-1).to_numpy().astype(np.int64)
    ok = r >= 0
    c = rows["_c"].to_numpy()[ok]
    matrix = np.full((order.height, days), np.nan)
    matrix[r[ok], c] = rows["sales"].fill_null(np.nan).to_numpy()[ok]
    prices = np.full((order.height, days), np.nan)
    prices[r[ok], c] = rows["sell_price"].fill_null(np.nan).to_numpy()[ok]
    known = ~np.isnan(prices)
    last = days - 1 - np.argmax(known[:, ::-1], axis=1)
    unit_price = np.where(known.any(axis=1), prices[np.arange(order.height), last], np.nan)
    series = order.select(pl.col(h).cast(pl.String) for h in hier).with_columns(
        pl.Series("unit_price", unit_price).fill_nan(None)
    )
    return series, matrix


def id_in(dtype: pl.DataType, ids: list[str]) -> pl.Expr:
    """``id`` is one of ``ids`` (compared on the Enum's codes: no per-row string cast)."""
    if isinstance(dtype, pl.Enum):
        wanted = pl.Series(ids, dtype=pl.String).cast(dtype, strict=False).drop_nulls()
        return pl.col("id").is_in(wanted.implode())
    return pl.col("id").cast(pl.String).is_in(pl.Series(ids, dtype=pl.String).implode())


def read_forecasts(exports: Path) -> pl.DataFrame | None:
    """The forecasts export, or None when ``batch_forecasts`` has not written it yet."""
    path = exports / FORECASTS_FILE
    return pl.read_parquet(path) if path.exists() else None


def backtest_wrmsse(exports: Path, model: str) -> float | None:
    """Mean over folds of the backtest WRMSSE (level ``all``) of ``model``, if exported."""
    path = exports / BACKTEST_FILE
    if not path.exists():
        return None
    rows = pl.read_parquet(path).filter((pl.col("model") == model) & (pl.col("level") == "all"))
    return float(rows["wrmsse"].mean()) if rows.height else None


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, numpy scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, date):
        return obj.isoformat()
    return obj


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_clean(payload), indent=2, allow_nan=False))


# ---------------------------------------------------------------------------------------------
# drift_report
# ---------------------------------------------------------------------------------------------


class DriftConfig(dg.Config):
    """Windows and thresholds of the drift report."""

    recent_days: int = 28
    """Recent window: the last N history days."""
    reference_days: int = 364
    """Reference ("training") window: the N days before the recent window."""
    max_series: int = 2000
    """Series sampled (seeded) for the feature PSI."""
    psi_bins: int = 10
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    min_alert_features: int = 3
    """Feature drift is an alert when this many features are above ``psi_alert`` ..."""
    min_alert_share: float = 0.1
    """... or this share of the features is."""
    exclude_calendar_features: bool = True
    """Calendar/event features differ between windows by construction: leave them out."""
    exclude_features: list[str] = Field(default_factory=list)
    prediction_psi_warn: float = 0.1
    prediction_psi_alert: float = 0.25
    prediction_change_warn: float = 0.25
    prediction_change_alert: float = 0.5
    """|total forecast / total of the recent actuals − 1| above this → alert."""
    accuracy_warn: float = 0.05
    accuracy_alert: float = 0.10
    """Realized WRMSSE worse than the backtest by more than this share → alert."""
    backtest_model: str = "lightgbm"
    min_actual_days: int = 7
    """An archived forecast is scored once at least this many of its days have actuals."""
    seed: int = 0


def drift_feature_columns(features: pl.LazyFrame, config: DriftConfig) -> list[str]:
    """Numeric model inputs to watch (the feature catalog's list when available)."""
    schema = features.collect_schema()
    numeric = [n for n, t in schema.items() if t.is_numeric() and n not in NON_FEATURES]
    excluded = set(config.exclude_features)
    try:
        from forecasting_assets.features import build as fb

        wanted = set(fb.feature_columns(include_ids=False))
        if config.exclude_calendar_features:
            excluded |= {*fb.CALENDAR_FEATURES, *fb.EVENT_FEATURES}
        numeric = [n for n in numeric if n in wanted] or numeric
    except (ImportError, AttributeError):  # feature module not available: numeric columns
        pass
    return [n for n in numeric if n not in excluded]


def feature_drift(
    features: pl.LazyFrame, last_d: int, config: DriftConfig
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """PSI per feature: the recent window against the reference window (sampled series)."""
    columns = drift_feature_columns(features, config)
    id_type = features.collect_schema()["id"]
    if isinstance(id_type, pl.Enum):  # the categories are the series: no scan needed
        ids = sorted(id_type.categories.to_list())
    else:
        ids = (
            features.select(pl.col("id").unique()).collect()["id"].cast(pl.String).sort().to_list()
        )
    if len(ids) > config.max_series:
        rng = np.random.default_rng(config.seed)
        ids = sorted(rng.choice(ids, config.max_series, replace=False).tolist())
    recent_start = last_d - config.recent_days + 1
    ref_start = recent_start - config.reference_days
    frame = (
        features.filter(pl.col("d").is_between(ref_start, last_d) & id_in(id_type, ids))
        .select("d", *columns)
        .collect()
    )
    recent = frame.filter(pl.col("d") >= recent_start)
    reference = frame.filter(pl.col("d") < recent_start)
    table = psi_table(
        reference,
        recent,
        columns,
        bins=config.psi_bins,
        warn=config.psi_warn,
        alert=config.psi_alert,
    )
    window = {
        "series_sampled": len(ids),
        "reference_d": [ref_start, recent_start - 1],
        "recent_d": [recent_start, last_d],
        "reference_rows": reference.height,
        "recent_rows": recent.height,
    }
    return table.sort("psi", descending=True, nulls_last=True), window


def archive_forecasts(forecasts: pl.DataFrame, exports: Path, config: DriftConfig) -> str:
    """Copy the forecasts export into the archive once; returns its key."""
    version = (
        str(forecasts["model_version"][0]) if "model_version" in forecasts.columns else "unknown"
    )
    key = f"{version}_{forecasts['date'].min()}".replace("/", "-")
    target = exports / ARCHIVE_DIR / f"{key}.parquet"
    if not target.exists():
        with atomic_write(target) as tmp:
            shutil.copyfile(exports / FORECASTS_FILE, tmp)
        _write_json(
            target.with_suffix(".json"),
            {
                "key": key,
                "model_version": version,
                "first_date": forecasts["date"].min(),
                "last_date": forecasts["date"].max(),
                "archived_at": datetime.now(UTC).isoformat(),
                "backtest_model": config.backtest_model,
                "backtest_wrmsse": backtest_wrmsse(exports, config.backtest_model),
            },
        )
        logger.info("archived forecasts %s to %s", key, target)
    return key


def list_archives(exports: Path) -> list[dict[str, Any]]:
    """Archived forecasts (sidecar contents + ``path``), oldest first date first."""
    out = []
    for meta in sorted((exports / ARCHIVE_DIR).glob("*.json")):
        info = json.loads(meta.read_text())
        info["path"] = meta.with_suffix(".parquet")
        if info["path"].exists():
            out.append(info)
    return sorted(out, key=lambda i: (i["first_date"], i.get("archived_at", "")))


def realized_accuracy(
    sales_long: pl.LazyFrame, exports: Path, last_date: date, config: DriftConfig
) -> dict[str, Any] | None:
    """Score the most recent archived forecast that has enough actuals (None when none has)."""
    from forecasting_assets.modeling.backtest import build_panel
    from forecasting_assets.monitoring.accuracy import (
        accuracy_status,
        forecast_matrix,
        realized_wrmsse,
    )

    candidates = [
        a
        for a in list_archives(exports)
        if (last_date - date.fromisoformat(a["first_date"])).days + 1 >= config.min_actual_days
    ]
    if not candidates:
        return None
    arch = candidates[-1]
    logger.info("scoring archived forecast %s against its actuals", arch["key"])
    forecast = pl.read_parquet(arch["path"])
    first = date.fromisoformat(arch["first_date"])
    panel = build_panel(sales_long)
    dates = (
        sales_long.filter(pl.col("date") >= first).select("d", "date").unique().sort("d").collect()
    )
    first_d = int(dates["d"][0])
    days = [d for d in forecast["date"].unique().sort().to_list() if first <= d <= last_date]
    ids = panel.hierarchy["id"].cast(pl.String).to_list()
    fc = forecast_matrix(forecast, ids, days)
    keep = ~np.isnan(fc).any(axis=1)
    if not keep.any():
        return None
    origin = first_d - 1
    col = panel.col(first_d)
    history = panel.history(origin)[keep]
    actual = panel.sales[keep, col : col + len(days)]
    scored = realized_wrmsse(
        history, panel.hierarchy.filter(pl.Series(keep)), panel.dollar_sales(origin)[keep],
        actual, fc[keep],
    )  # fmt: skip
    backtest = arch.get("backtest_wrmsse")
    if backtest is None:
        backtest = backtest_wrmsse(exports, config.backtest_model)
    status, degradation = accuracy_status(
        scored["wrmsse"], backtest, warn=config.accuracy_warn, alert=config.accuracy_alert
    )
    return {
        "archive": arch["key"],
        "model_version": arch.get("model_version"),
        "first_date": arch["first_date"],
        "days_with_actuals": len(days),
        "series": int(keep.sum()),
        "realized_wrmsse": scored["wrmsse"],
        "backtest_wrmsse": backtest,
        "degradation": degradation,
        "seasonal_naive_wrmsse": scored["seasonal_naive_wrmsse"],
        "ratio_to_seasonal_naive": scored["ratio_to_seasonal_naive"],
        "per_level": scored["per_level"],
        "threshold": config.accuracy_alert,
        "status": status,
    }


def compute_drift_report(
    sales_long: pl.LazyFrame, features: pl.LazyFrame, config: DriftConfig, exports: Path
) -> dict[str, Any]:
    """Build the report (archiving the current forecasts on the way)."""
    last_d, last_date = last_history_day(sales_long)
    table, window = feature_drift(features, last_d, config)
    feat_status = feature_drift_status(
        table, min_alert_features=config.min_alert_features, min_alert_share=config.min_alert_share
    )

    forecasts = read_forecasts(exports)
    prediction: dict[str, Any] = {"available": forecasts is not None, "status": "ok"}
    if forecasts is not None:
        previous = list_archives(exports)
        key = archive_forecasts(forecasts, exports, config)
        recent = (
            sales_long.filter(
                pl.col("d").is_between(last_d - config.recent_days + 1, last_d)
                & pl.col("sales").is_not_null()
            )
            .select("id", pl.col("sales").alias("value"))
            .collect()
        )
        vs_actuals = prediction_drift(forecasts, recent, bins=config.psi_bins)
        prev = [a for a in previous if a["key"] != key]
        vs_previous = None
        if prev:
            old = pl.read_parquet(prev[-1]["path"]).rename({"predicted_sales": "value"})
            vs_previous = {"archive": prev[-1]["key"], **prediction_drift(forecasts, old)}
        change = vs_actuals["mean_change"]
        status = worst_status(
            status_from_value(
                vs_actuals["psi"], config.prediction_psi_warn, config.prediction_psi_alert
            ),
            status_from_value(
                abs(change) if change is not None else None,
                config.prediction_change_warn,
                config.prediction_change_alert,
            ),
        )
        prediction = {
            "available": True,
            "model_version": key.rsplit("_", 1)[0],
            "forecast_key": key,
            "vs_recent_actuals": vs_actuals,
            "vs_previous_forecast": vs_previous,
            "thresholds": {
                "psi_warn": config.prediction_psi_warn,
                "psi_alert": config.prediction_psi_alert,
                "change_warn": config.prediction_change_warn,
                "change_alert": config.prediction_change_alert,
            },
            "status": status,
        }
    realized = realized_accuracy(sales_long, exports, last_date, config)
    status = worst_status(
        feat_status, prediction["status"], realized["status"] if realized else "ok"
    )
    return {
        "status": status,
        "generated_at": datetime.now(UTC).isoformat(),
        "last_history_date": last_date,
        "feature_drift": {
            "status": feat_status,
            "alert_features": int((table["status"] == "alert").sum()),
            "warn_features": int((table["status"] == "warn").sum()),
            "thresholds": {
                "warn": config.psi_warn,
                "alert": config.psi_alert,
                "min_alert_features": config.min_alert_features,
                "min_alert_share": config.min_alert_share,
            },
            **window,
        },
        "features": table.to_dicts(),
        "prediction_drift": prediction,
        "realized_accuracy": realized,
    }


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
) -> dg.MaterializeResult:
    """Drift report (`exports/drift_report.json`): PSI per feature (last 28 history days against
    the 364 days before), drift of the predictions (vs recent actuals and the previous forecast),
    and the realized WRMSSE of an archived forecast once its actuals arrived, against its
    backtest WRMSSE. Status ok / warn / alert from configurable thresholds; the retrain sensor
    reads it. The current forecasts are archived under `exports/forecast_archive/`."""
    exports = get_settings().exports_dir
    report = compute_drift_report(sales_long, features, config, exports)
    path = exports / DRIFT_FILE
    _write_json(path, report)
    write_pipeline_metrics(report, exports)
    context.log.info("drift_report: status %s", report["status"])
    top = [f for f in report["features"] if f["psi"] is not None][:10]
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
            "top_features": dg.MetadataValue.md(
                "| feature | PSI | status |\n|---|---|---|\n"
                + "\n".join(f"| {f['name']} | {f['psi']:.3f} | {f['status']} |" for f in top)
            ),
            "report": dg.MetadataValue.json(_clean(report)),
        }
    )


def check_drift_report_file(path: Path) -> tuple[bool, str]:
    """(passed, message) for the drift report's shape and values."""
    if not path.exists():
        return False, f"{path} does not exist"
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return False, f"{path} is not valid JSON: {exc}"
    missing = {"status", "generated_at", "features", "prediction_drift", "realized_accuracy"} - set(
        report
    )
    if missing:
        return False, f"missing keys {sorted(missing)}"
    if report["status"] not in STATUSES:
        return False, f"status {report['status']!r} not in {STATUSES}"
    bad = [
        f.get("name")
        for f in report["features"]
        if not {"name", "psi", "status"} <= set(f)
        or f["status"] not in STATUSES
        or (f["psi"] is not None and not f["psi"] >= 0)
    ]
    if bad:
        return False, f"invalid feature rows: {bad[:10]}"
    parts = [
        (report.get("feature_drift") or {}).get("status", "ok"),
        (report["prediction_drift"] or {}).get("status", "ok"),
        (report["realized_accuracy"] or {}).get("status", "ok"),
    ]
    if any(p not in STATUSES for p in parts):
        return False, f"unknown component status in {parts}"
    if STATUSES.index(report["status"]) < STATUSES.index(worst_status(*parts)):
        return False, f"overall status {report['status']!r} is milder than its parts {parts}"
    return True, f"status {report['status']}, {len(report['features'])} features"


@dg.asset_check(asset=drift_report, description="The drift report is complete and consistent.")
def drift_report_valid() -> dg.AssetCheckResult:
    """Keys, status values, PSI >= 0 and an overall status no milder than its parts."""
    passed, message = check_drift_report_file(get_settings().exports_dir / DRIFT_FILE)
    return dg.AssetCheckResult(passed=passed, metadata={"message": message})


# ---------------------------------------------------------------------------------------------
# inventory_plan
# ---------------------------------------------------------------------------------------------


class InventoryConfig(dg.Config):
    """Policy defaults, per store/department overrides and the validation set-up."""

    service_level: float = 0.95
    lead_time_days: int = 7
    review_days: int = 7
    ordering_cost: float = 20.0
    """Cost per order."""
    holding_cost_rate: float = 0.25
    """Holding cost per unit-year as a share of the unit price."""
    stockout_cost_rate: float = 1.0
    """Cost per unit short as a multiple of the unit price."""
    overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    """``{"CA_1": {...}, "FOODS_3": {...}, "CA_1/FOODS_3": {...}}`` → parameter values."""
    classification_days: int = 364
    """History days for ADI / CV² and the dispersion fit."""
    level_window: int = 28
    validation_series: int = 1000
    validation_folds: int = 4
    validation_levels: list[float] = Field(default_factory=lambda: [0.90, 0.95, 0.99])
    validation_tolerance: float = 0.03
    seed: int = 0


def demand_distribution(
    series: pl.DataFrame,
    matrix: np.ndarray,
    forecasts: pl.DataFrame,
    params: pl.DataFrame,
    config: InventoryConfig,
) -> pl.DataFrame:
    """Per series: demand class, forecast daily mean over its protection period, dispersion."""
    recent = matrix[:, -config.classification_days :]
    stats = demand_statistics(recent)
    protection = (params["lead_time_days"] + params["review_days"]).round().cast(pl.Int64)
    disp = np.ones(series.height)
    for p in protection.unique().to_list():
        rows = (protection == p).to_numpy()
        disp[rows], _ = fit_protection_dispersion(
            matrix[rows],
            int(p),
            level_window=config.level_window,
            fit_days=config.classification_days,
        )
    periods = sorted(int(p) for p in protection.unique().to_list())
    means = forecasts.group_by(pl.col("id").cast(pl.String)).agg(
        pl.col("predicted_sales").cast(pl.Float64).sort_by("date").head(p).mean().alias(f"_m{p}")
        for p in periods
    )
    dist = series.with_columns(
        pl.Series("adi", stats["adi"]),
        pl.Series("cv2", stats["cv2"]),
        pl.Series("demand_class", classify_demand(stats["adi"], stats["cv2"]), dtype=pl.String),
        pl.Series("dispersion", disp),
        protection.alias("_p"),
    ).join(means, on="id", how="inner")
    pick = pl.coalesce([pl.when(pl.col("_p") == p).then(pl.col(f"_m{p}")) for p in periods])
    dist = dist.with_columns(pick.alias("mean_daily_demand")).drop([f"_m{p}" for p in periods])
    return dist.drop("_p")


def _fill_prices(frame: pl.DataFrame) -> pl.DataFrame:
    """Missing unit prices: the department's median, else 1.0."""
    by = "dept_id" if "dept_id" in frame.columns else None
    fill = pl.col("unit_price").median().over(by) if by else pl.col("unit_price").median()
    return frame.with_columns(pl.col("unit_price").fill_null(fill).fill_null(1.0))


def validation_days(config: InventoryConfig) -> int:
    """History days the walk-forward validation needs."""
    protection = config.lead_time_days + config.review_days
    return (
        config.classification_days + config.level_window + config.validation_folds * 28 + protection
    )


def validate_policy(
    ids: list[str], matrix: np.ndarray, config: InventoryConfig
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Walk-forward simulation of the policy on a seeded sample of series (history only).

    ``matrix`` rows follow ``ids``; its last :func:`validation_days` columns are used.
    """
    rows = np.arange(len(ids))
    if len(ids) > config.validation_series:
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(len(ids), config.validation_series, replace=False))
    table = backtest_order_up_to(
        matrix[rows, -validation_days(config) :],
        config.validation_levels,
        lead_time_days=config.lead_time_days,
        review_days=config.review_days,
        n_folds=config.validation_folds,
        fit_days=config.classification_days,
        level_window=config.level_window,
    )
    overall = table.filter(pl.col("fold") == 0)
    levels = [
        {
            "target": r["service_level"],
            "achieved_cycle_service_level": r["cycle_service_level"],
            "fill_rate": r["fill_rate"],
            "cycles": r["cycles"],
            "within_tolerance": abs(r["cycle_service_level"] - r["service_level"])
            <= config.validation_tolerance,
        }
        for r in overall.iter_rows(named=True)
    ]
    summary = {
        "generated_at": datetime.now(UTC).isoformat(),
        "method": (
            "periodic review (R, S) with backorders simulated day by day on the last "
            f"{config.validation_folds} folds of 28 history days; S from a negative binomial with "
            f"mean = {config.level_window}-day moving average x (L+R) and dispersion fitted on the "
            f"previous {config.classification_days} days"
        ),
        "series_sampled": len(rows),
        "lead_time_days": config.lead_time_days,
        "review_days": config.review_days,
        "tolerance": config.validation_tolerance,
        "levels": levels,
        "folds": table.filter(pl.col("fold") > 0).to_dicts(),
    }
    return table, summary


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[dg.AssetKey("batch_forecasts")],
    ins={"sales_long": dg.AssetIn(key="sales_long")},
)
def inventory_plan(
    context: dg.AssetExecutionContext, config: InventoryConfig, sales_long: pl.LazyFrame
) -> dg.MaterializeResult:
    """Inventory plan (`exports/inventory_plan.parquet`), one row per series: demand class
    (ADI/CV²), expected demand over lead time + review, safety stock, reorder point and
    order-up-to level for the target cycle service level from a negative-binomial (Poisson)
    protection-period demand whose mean is the forecast and whose dispersion is fitted on
    history, EOQ and expected yearly holding / stock-out / ordering costs. Defaults 95 %, 7-day
    lead time, weekly review; per store / department overrides. The policy is validated by
    simulating it on history (`exports/inventory_validation.json`)."""
    exports = get_settings().exports_dir
    forecasts = read_forecasts(exports)
    if forecasts is None:
        raise dg.Failure(
            f"{exports / FORECASTS_FILE} does not exist: materialize batch_forecasts first"
        )
    defaults = {
        "service_level": config.service_level,
        "lead_time_days": config.lead_time_days,
        "review_days": config.review_days,
        "ordering_cost": config.ordering_cost,
        "holding_cost_rate": config.holding_cost_rate,
        "stockout_cost_rate": config.stockout_cost_rate,
    }
    max_p = config.lead_time_days + config.review_days
    for values in config.overrides.values():
        max_p = max(max_p, int(values.get("lead_time_days", config.lead_time_days))
                    + int(values.get("review_days", config.review_days)))  # fmt: skip
    plan_days = config.classification_days + config.level_window + max_p
    series, matrix = history_window(sales_long, max(plan_days, validation_days(config)))
    series = _fill_prices(series)
    params = resolve_parameters(series, defaults, dict(config.overrides))
    dist = demand_distribution(series, matrix[:, -plan_days:], forecasts, params, config)
    dist = dist.join(params.select("id", *defaults), on="id", how="left")
    plan = plan_inventory(dist)
    plan = plan.select([c for c in PLAN_COLUMNS if c in plan.columns])
    path = exports / PLAN_FILE
    with atomic_write(path) as tmp:
        plan.write_parquet(tmp)
    _, summary = validate_policy(series["id"].to_list(), matrix, config)
    _write_json(exports / VALIDATION_FILE, summary)
    classes = plan.group_by("demand_class").len().sort("demand_class")
    context.log.info("inventory_plan: %d series written to %s", plan.height, path)
    return dg.MaterializeResult(
        metadata={
            "path": str(path),
            "rows": plan.height,
            "demand_classes": dg.MetadataValue.json(
                dict(zip(classes["demand_class"], classes["len"], strict=True))
            ),
            "safety_stock_value": float((plan["safety_stock"] * plan["unit_price"]).sum()),
            "expected_total_cost_per_year": float(plan["expected_total_cost"].sum()),
            "validation": dg.MetadataValue.md(
                "| target | achieved CSL | fill rate | cycles |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {lv['target']:.0%} | {lv['achieved_cycle_service_level']:.3f} | "
                    f"{lv['fill_rate']:.3f} | {lv['cycles']} |"
                    for lv in summary["levels"]
                )
            ),
        }
    )


def check_plan_frame(plan: pl.DataFrame) -> tuple[bool, str]:
    """(passed, message): columns, unique ids, no nulls, non-negative, S >= ROP, valid classes."""
    from forecasting_assets.inventory import DEMAND_CLASSES

    required = [c for c in PLAN_COLUMNS if c not in ("dept_id",)]
    missing = [c for c in required if c not in plan.columns]
    if missing:
        return False, f"missing columns {missing}"
    if plan.height == 0:
        return False, "the plan is empty"
    dupes = plan.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if dupes:
        return False, f"duplicate ids {dupes[:10]}"
    numeric = [c for c in NON_NEGATIVE if c in plan.columns]
    nulls = [c for c in numeric if plan[c].is_null().any() or plan[c].is_nan().any()]
    if nulls:
        return False, f"null/NaN values in {nulls}"
    negative = [c for c in numeric if (plan[c] < 0).any()]
    if negative:
        return False, f"negative values in {negative}"
    bad_sl = plan.filter((pl.col("service_level") <= 0) | (pl.col("service_level") >= 1))
    if bad_sl.height:
        return False, f"service_level outside (0, 1) for {bad_sl['id'].head(10).to_list()}"
    inverted = plan.filter(pl.col("order_up_to") < pl.col("reorder_point"))
    if inverted.height:
        return False, f"order_up_to < reorder_point for {inverted['id'].head(10).to_list()}"
    bad_class = plan.filter(~pl.col("demand_class").is_in(list(DEMAND_CLASSES)))
    if bad_class.height:
        return False, f"unknown demand_class for {bad_class['id'].head(10).to_list()}"
    return True, f"{plan.height} series"


@dg.asset_check(asset=inventory_plan, description="The plan is complete and coherent.")
def inventory_plan_valid() -> dg.AssetCheckResult:
    """Columns, one row per id, no nulls, non-negative levels and costs, S >= reorder point."""
    path = get_settings().exports_dir / PLAN_FILE
    if not path.exists():
        return dg.AssetCheckResult(passed=False, metadata={"message": f"{path} does not exist"})
    passed, message = check_plan_frame(pl.read_parquet(path))
    return dg.AssetCheckResult(passed=passed, metadata={"message": message})


def check_validation_file(path: Path) -> tuple[bool, str]:
    """(passed, message): every target level achieved within its tolerance in the simulation."""
    if not path.exists():
        return False, f"{path} does not exist"
    summary = json.loads(path.read_text())
    levels = summary.get("levels") or []
    if not levels:
        return False, "no simulated service level"
    tol = float(summary.get("tolerance", 0.03))
    off = [
        f"{lv['target']:.3f}: {lv['achieved_cycle_service_level']}"
        for lv in levels
        if lv.get("achieved_cycle_service_level") is None
        or abs(lv["achieved_cycle_service_level"] - lv["target"]) > tol
    ]
    if off:
        return False, f"achieved cycle service level off target by more than {tol}: {off}"
    return True, "; ".join(
        f"{lv['target']:.0%} → {lv['achieved_cycle_service_level']:.3f} (fill {lv['fill_rate']:.3f})"
        for lv in levels
    )


@dg.asset_check(
    asset=inventory_plan,
    description="Simulated on history, the policy achieves its target cycle service levels.",
)
def inventory_service_level_validated() -> dg.AssetCheckResult:
    """Achieved cycle service level within the tolerance (±3 points) at every validated target."""
    passed, message = check_validation_file(get_settings().exports_dir / VALIDATION_FILE)
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata={"message": message}
    )


MONITORING_ASSETS = [drift_report, inventory_plan]
MONITORING_CHECKS = [drift_report_valid, inventory_plan_valid, inventory_service_level_validated]
