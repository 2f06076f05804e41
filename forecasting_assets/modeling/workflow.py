"""Training and batch-forecast workflows: backtest, MLflow logging, registry gate, exports.

These functions hold everything the Dagster assets do, with the MLflow access passed in (any
object with ``start_run()`` and ``client()`` like :class:`~forecasting_assets.defs.mlflow_resource.MLflowResource`),
so they run the same from tests, benchmarks and Dagster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import mlflow
import numpy as np
import polars as pl
from mlflow.models import infer_signature

from forecasting_assets.modeling import registry
from forecasting_assets.modeling.backtest import (
    Fold,
    Panel,
    backtest_baselines,
    build_panel,
    fold_definition,
    make_folds,
    metrics_frame,
    score_rows,
    wrmsse_of,
)
from forecasting_assets.modeling.baselines import seasonal_naive
from forecasting_assets.modeling.forecast import (
    aggregate_forecasts,
    export_frame,
    forecast_frame,
    hard_checks,
)
from forecasting_assets.modeling.predict import LightGBMDemandModel, write_model_artifacts
from forecasting_assets.modeling.quantiles import QUANTILES, ConformalQuantiles, coverage_rows
from forecasting_assets.modeling.recent import CONTEXT_DAYS, with_recent_features
from forecasting_assets.modeling.train import (
    Encoder,
    backtest_model,
    fit_model,
    history_matrix,
    input_spec,
    lgb_params,
    model_specs,
    train_mask,
)
from forecasting_assets.settings import atomic_write

logger = logging.getLogger(__name__)

MODEL_NAME = "lightgbm"
AGG_CALIBRATION_LEVELS: tuple[str, ...] = ("total", "state", "store", "cat", "dept")


class MLflowLike(Protocol):
    """What the workflows need from the MLflow resource."""

    def start_run(self, run_name: str | None = None, tags: dict[str, Any] | None = None) -> Any: ...

    def client(self) -> Any: ...


@dataclass
class TrainingSettings:
    """Training configuration (mirrors the demand_model dg.Config)."""

    train_start_d: int = 700
    n_folds: int = 3
    horizon: int = 28
    num_boost_round: int = 100
    params: dict[str, Any] = field(default_factory=dict)
    recursive_weight: float = 0.5
    max_train_rows: int = 3_000_000
    max_window_rows: int = 16_000_000
    seed: int = 42
    num_threads: int = 2
    quantile_bins: int = 40


def data_version(panel: Panel) -> str:
    """Content fingerprint of the history (sales, prices, ids) the model was scored on."""
    h = hashlib.blake2b(digest_size=12)
    h.update("|".join(panel.hierarchy["id"].cast(pl.String).to_list()).encode())
    h.update(np.ascontiguousarray(panel.sales).tobytes())
    h.update(np.ascontiguousarray(panel.price).tobytes())
    return f"d{panel.first_day}-d{panel.last_day}-{h.hexdigest()}"


MIN_TRAIN_DAYS = 364


def effective_train_start(
    requested: int,
    folds: Sequence[Fold],
    first_day: int,
    n_series: int = 1,
    max_window_rows: int = 0,
) -> int:
    """The first training day: as requested, but

    * later if the window (with the recent-feature context and the horizon) would hold more than
      ``max_window_rows`` series-days (``> 0``): this bounds the memory at full M5 scale;
    * earlier if the first fold would have less than a year of training days (small data);
    * never before the first day.
    """
    start = requested
    if max_window_rows > 0:
        window_end = folds[-1].end + folds[-1].horizon  # the horizon rows are loaded too
        start = max(start, window_end + CONTEXT_DAYS + 1 - max_window_rows // max(n_series, 1))
    return max(first_day, min(start, folds[0].origin - MIN_TRAIN_DAYS + 1))


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write a parquet file so readers see either the old or the complete new file."""
    with atomic_write(path) as tmp:
        frame.write_parquet(tmp)


def baseline_metrics_for(
    panel: Panel, folds: list[Fold], given: pl.DataFrame | None
) -> pl.DataFrame:
    """The baselines' backtest metrics on ``folds``: reuse ``given`` (the baselines asset) if it was
    scored on the same folds (checked via seasonal naive), else recompute."""
    if given is not None and given.height:
        try:
            for fold in folds:
                ev = panel.evaluator(fold)
                sn = ev.score(
                    panel.actuals(fold), seasonal_naive(panel.history(fold.origin), fold.horizon)
                )["all"]
                if not math.isclose(sn, wrmsse_of(given, "seasonal_naive", fold.k), rel_tol=1e-9):
                    raise KeyError("different folds")
            return given
        except KeyError:
            logger.info("baseline metrics were scored on other folds/data: recomputing")
    return backtest_baselines(panel, folds)


@dataclass
class TrainingResult:
    """What a training produced (returned to Dagster as the asset's JSON value)."""

    run_id: str
    model_version: str
    promoted: bool
    promotion_reason: str
    champion_version: str | None
    data_version: str
    wrmsse: float
    wrmsse_seasonal_naive: float
    wrmsse_ratio: float
    level_wrmsse: dict[str, float]
    baseline_wrmsse: dict[str, float]
    prediction_stats: dict[str, float]
    coverage_80: float
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def _prediction_stats(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    finite = np.isfinite(v)
    return {
        "n": float(v.size),
        "n_non_finite": float((~finite).sum()),
        "n_negative": float((v[finite] < 0).sum()),
        "min": float(v[finite].min()) if finite.any() else float("nan"),
        "max": float(v[finite].max()) if finite.any() else float("nan"),
        "mean": float(v[finite].mean()) if finite.any() else float("nan"),
    }


def run_training(
    features: pl.LazyFrame | pl.DataFrame,
    sales_long: pl.LazyFrame | pl.DataFrame,
    feature_columns: Sequence[str],
    categorical_columns: Sequence[str],
    settings: TrainingSettings,
    mlflow_resource: MLflowLike,
    exports_dir: Path,
    encoder: Encoder | None = None,
    baseline_metrics: pl.DataFrame | None = None,
    catalog_path: Path | None = None,
    extra_columns: Sequence[str] = (),
) -> TrainingResult:
    """Backtest, train the final model, log it to MLflow, register it and apply the gate.

    Any exception ends the MLflow run as FAILED before the alias is touched. Exports
    (backtest_metrics.parquet, interval_coverage.parquet) are written only after success.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    panel = build_panel(sales_long)
    folds = make_folds(panel.last_day, settings.n_folds, settings.horizon)
    dv = data_version(panel)
    fdef = fold_definition(folds)
    timings["panel"] = time.perf_counter() - t0

    t = time.perf_counter()
    lf = features.lazy()
    names = lf.collect_schema().names()
    needed = list(dict.fromkeys(["id", "d", "sales", "is_launched", *feature_columns,
                                 *[c for c in extra_columns if c in names]]))  # fmt: skip
    start_d = effective_train_start(
        settings.train_start_d, folds, panel.first_day, panel.hierarchy.height,
        settings.max_window_rows,
    )  # fmt: skip
    feats = with_recent_features(
        lf.filter(pl.col("d") >= start_d - CONTEXT_DAYS).select(needed).collect()
    )
    specs, weights = model_specs(
        feats.schema, feature_columns, categorical_columns, settings.recursive_weight
    )
    params = lgb_params(settings.params, seed=settings.seed, num_threads=settings.num_threads)
    timings["load_features"] = time.perf_counter() - t

    with mlflow_resource.start_run(run_name="demand_model", tags={"data_version": dv}) as run:
        run_id = run.info.run_id
        mlflow.log_params(
            {
                "train_start_d": start_d,
                "train_start_d_requested": settings.train_start_d,
                "train_end_d": panel.last_day,
                "horizon": settings.horizon,
                "n_folds": settings.n_folds,
                "fold_definition": fdef,
                "num_boost_round": settings.num_boost_round,
                "recursive_weight": settings.recursive_weight,
                "max_train_rows": settings.max_train_rows,
                "max_window_rows": settings.max_window_rows,
                "n_series": panel.hierarchy.height,
                "feature_columns": json.dumps(input_spec(specs).feature_columns),
                **{f"lgb_{k}": v for k, v in params.items()},
            }
        )
        # 1. Walk-forward backtest of the model and the baselines.
        t = time.perf_counter()
        outputs = backtest_model(
            feats,
            panel,
            folds,
            specs,
            weights,
            params,
            settings.num_boost_round,
            start_d,
            encoder,
            settings.max_train_rows,
            settings.seed,
        )
        timings["backtest_model"] = time.perf_counter() - t
        t = time.perf_counter()
        base = baseline_metrics_for(panel, folds, baseline_metrics)
        rows: list[dict[str, object]] = []
        part_scores: dict[str, float] = {}
        cov_rows: list[dict[str, object]] = []
        level_pairs: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
            lv: ([], []) for lv in AGG_CALIBRATION_LEVELS
        }
        for out in outputs:
            ev = panel.evaluator(out.fold)
            actual = panel.actuals(out.fold)
            rows.extend(score_rows(MODEL_NAME, out.fold, ev, actual, out.forecast))
            part_scores.update(
                {f"wrmsse_{MODEL_NAME}_{k}_fold{out.fold.k}": ev.score(actual, f)["all"]
                 for k, f in out.parts.items()}
            )  # fmt: skip
            for lv in AGG_CALIBRATION_LEVELS:
                level_pairs[lv][0].append(ev.levels[lv].aggregate(out.forecast))
                level_pairs[lv][1].append(ev.levels[lv].aggregate(actual))
        model_metrics = metrics_frame(rows)
        all_metrics = pl.concat([model_metrics, base.select(model_metrics.columns)])
        # 2. Quantiles: coverage of each fold from a calibration fitted on the other folds.
        for out in outputs:
            others = [o for o in outputs if o is not out] or [out]
            cal = ConformalQuantiles.fit(
                np.concatenate([o.forecast.ravel() for o in others]),
                np.concatenate([panel.actuals(o.fold).ravel() for o in others]),
                QUANTILES, settings.quantile_bins,
            )  # fmt: skip
            cov_rows.extend(
                coverage_rows(
                    MODEL_NAME, out.fold.k, panel.actuals(out.fold), cal.predict(out.forecast)
                )
            )
        calibration = ConformalQuantiles.fit(
            np.concatenate([o.forecast.ravel() for o in outputs]),
            np.concatenate([panel.actuals(o.fold).ravel() for o in outputs]),
            QUANTILES, settings.quantile_bins,
            level_pairs={lv: (np.concatenate(f), np.concatenate(a)) for lv, (f, a) in level_pairs.items()},
        )  # fmt: skip
        coverage = pl.DataFrame(cov_rows, schema={
            "model": pl.String, "fold": pl.Int32, "kind": pl.String, "quantile": pl.Float64,
            "coverage": pl.Float64, "coverage_strict": pl.Float64})  # fmt: skip
        timings["scoring"] = time.perf_counter() - t

        last = folds[-1].k
        wr = wrmsse_of(all_metrics, MODEL_NAME, last)
        wr_sn = wrmsse_of(all_metrics, "seasonal_naive", last)
        bottom = model_metrics.filter((pl.col("fold") == last) & (pl.col("level") == "all")).row(
            0, named=True
        )
        cov80 = coverage.filter(
            (pl.col("kind") == "interval") & (pl.col("quantile") == 0.8) & (pl.col("fold") == last)
        )
        cov80_value = float(cov80["coverage"][0]) if cov80.height else float("nan")
        mlflow.log_metrics(
            {
                "wrmsse": wr,
                "wrmsse_seasonal_naive": wr_sn,
                "wrmsse_ratio": wr / wr_sn,
                "mae": float(bottom["mae"]),
                "rmse": float(bottom["rmse"]),
                "bias": float(bottom["bias"]),
                "coverage_80": cov80_value,
                **part_scores,
                **{
                    f"wrmsse_{r['model']}_fold{r['fold']}_{r['level']}": float(r["wrmsse"])
                    for r in all_metrics.iter_rows(named=True)
                },
            }
        )

        # 3. Final model on all history up to the last day; forecast the horizon.
        t = time.perf_counter()
        final = encoder(feats, panel.last_day) if encoder else feats
        model = fit_model(
            final, specs, weights, params, settings.num_boost_round,
            train_mask(final, start_d, panel.last_day, settings.max_train_rows, settings.seed),
        )  # fmt: skip
        horizon_rows = final.filter(pl.col("d") > panel.last_day).sort("id", "d")
        horizon_pred = model.forecast(horizon_rows, history_matrix(final, panel.last_day))
        stats = _prediction_stats(
            np.concatenate([horizon_pred, *[o.forecast.ravel() for o in outputs]])
        )
        timings["final_model"] = time.perf_counter() - t

        # 4. Log artifacts and the pyfunc model; register; gate.
        t = time.perf_counter()
        imp = model.importance()
        mlflow.log_dict({r["feature"]: {"gain": r["gain"], "split": r["split"]} for r in imp.iter_rows(named=True)},
                        "feature_importance.json")  # fmt: skip
        mlflow.log_dict(calibration.to_dict(), "quantile_calibration.json")
        if catalog_path is not None and Path(catalog_path).exists():
            mlflow.log_artifact(str(catalog_path))
        with tempfile.TemporaryDirectory() as tmp:
            all_metrics.write_parquet(Path(tmp) / "backtest_metrics.parquet")
            coverage.write_parquet(Path(tmp) / "interval_coverage.parquet")
            mlflow.log_artifact(str(Path(tmp) / "backtest_metrics.parquet"))
            mlflow.log_artifact(str(Path(tmp) / "interval_coverage.parquet"))
            arts = write_model_artifacts(Path(tmp) / "model", model, calibration.to_dict())
            example = model.input_spec.input_frame(
                final.filter(pl.col("d") == panel.last_day).head(5)
            )
            signature = infer_signature(example, model.predict(pl.from_pandas(example)))
            info = mlflow.pyfunc.log_model(
                name="model", python_model=LightGBMDemandModel(), artifacts=arts, signature=signature,
                input_example=example, registered_model_name=registry.MODEL_NAME,
                pip_requirements=["lightgbm", "polars", "numpy", "pandas", "mlflow"],
            )  # fmt: skip
        version = str(info.registered_model_version)
        client = mlflow_resource.client()
        registry.tag_version(client, version, {
            registry.TAG_WRMSSE: repr(wr), registry.TAG_DATA_VERSION: dv, registry.TAG_FOLDS: fdef,
            "wrmsse_seasonal_naive": repr(wr_sn), "run_id": run_id,
            "train_start_d": start_d, "train_end_d": panel.last_day})  # fmt: skip
        champion = registry.get_champion(client)
        decision = registry.decide(wr, dv, fdef, champion)
        registry.apply_decision(client, version, decision)
        mlflow.set_tags({"promotion": "promoted" if decision.promote else "rejected",
                         "promotion_reason": decision.reason, "model_version": version})  # fmt: skip
        timings["mlflow"] = time.perf_counter() - t

    exports_dir = Path(exports_dir)
    write_parquet_atomic(all_metrics, exports_dir / "backtest_metrics.parquet")
    write_parquet_atomic(coverage, exports_dir / "interval_coverage.parquet")
    timings["total"] = time.perf_counter() - t0
    level_wr = {
        r["level"]: float(r["wrmsse"])
        for r in model_metrics.filter(pl.col("fold") == last).iter_rows(named=True)
    }
    base_wr = {
        r["model"]: float(r["wrmsse"])
        for r in base.filter((pl.col("fold") == last) & (pl.col("level") == "all")).iter_rows(
            named=True
        )
    }
    return TrainingResult(
        run_id=run_id, model_version=version, promoted=decision.promote, promotion_reason=decision.reason,
        champion_version=version if decision.promote else (champion.version if champion else None),
        data_version=dv, wrmsse=wr, wrmsse_seasonal_naive=wr_sn, wrmsse_ratio=wr / wr_sn,
        level_wrmsse=level_wr, baseline_wrmsse=base_wr, prediction_stats=stats,
        coverage_80=cov80_value, seconds=timings,
    )  # fmt: skip


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
    horizon: int = 28,
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
            f"no '{registry.CHAMPION}' version of {registry.MODEL_NAME}: materialize demand_model first"
        )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}")
    inner = pyfunc.unwrap_python_model()
    if (
        not isinstance(inner, LightGBMDemandModel)
        or inner.model is None
        or inner.calibration is None
    ):
        raise TypeError("champion is not a LightGBMDemandModel with its parts and calibration")
    model = inner.model
    mv = client.get_model_version(registry.MODEL_NAME, champion.version)
    start_d = int((mv.tags or {}).get("train_start_d", 0))

    lf = features.lazy()
    last_day = int(
        lf.filter(pl.col("sales").is_not_null()).select(pl.col("d").max()).collect().item()
    )
    hier = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id", "date"]
    names = lf.collect_schema().names()
    extra = [c for c in extra_columns if c in names]
    table_cols = [c for c in model.input_columns if c in names]
    cols = list(dict.fromkeys([*hier, "d", "sales", "is_launched", *table_cols, *extra]))
    first = start_d - CONTEXT_DAYS  # the rows training read (encodings)
    frame = lf.filter(pl.col("d") >= first).select(cols).collect()
    if encoder is not None:
        frame = encoder(frame, last_day)
    rows = frame.filter(pl.col("d") > last_day).sort("id", "d")
    point = inner.forecast(rows, history_matrix(frame, last_day))
    cal = ConformalQuantiles.from_dict(inner.calibration)
    forecasts = forecast_frame(rows, point, cal, champion.version)
    failed = [c for c in hard_checks(forecasts, horizon) if not c.passed]
    if failed:
        raise ValueError(
            "forecast checks failed, exports left unchanged: "
            + "; ".join(c.description for c in failed)
        )
    aggregated = aggregate_forecasts(forecasts, cal)
    importance = model.importance()
    exports_dir = Path(exports_dir)
    write_parquet_atomic(export_frame(forecasts), exports_dir / "forecasts.parquet")
    write_parquet_atomic(aggregated, exports_dir / "forecasts_aggregated.parquet")
    write_parquet_atomic(importance, exports_dir / "feature_importance.parquet")
    logger.info("wrote %s forecast rows from champion v%s", forecasts.height, champion.version)
    return ForecastResult(forecasts, aggregated, importance, champion.version, last_day)
