"""The training workflow: backtest on the fold plan, choices on the mean over folds, the final
model, MLflow logging, registration and the promotion gate.

The MLflow access is passed in (any object with ``start_run()`` and ``client()``, like the
Dagster ``mlflow`` resource), so the workflow runs the same from tests, benchmarks and Dagster.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import mlflow
import numpy as np
import polars as pl
from mlflow.models import infer_signature

from forecasting_assets import contracts
from forecasting_assets.export_schemas import validate_export
from forecasting_assets.modeling import registry
from forecasting_assets.modeling.backtest import (
    Fold,
    Panel,
    backtest_baselines,
    fold_definition,
    headline,
    metrics_frame,
    score_rows,
    wrmsse_of,
)
from forecasting_assets.modeling.baselines import (
    naive_spread_quantiles,
    quantiles_by_level,
    seasonal_naive_quantiles,
)
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.family import ModelFamily
from forecasting_assets.modeling.metrics import M5_QUANTILES
from forecasting_assets.modeling.plan import data_version, plan_training
from forecasting_assets.modeling.predict import LightGBMDemandModel, write_model_artifacts
from forecasting_assets.modeling.quantile_calibration import QuantileCalibration
from forecasting_assets.modeling.quantiles import QUANTILES, coverage_rows
from forecasting_assets.modeling.selection import BlendChoice, FoldScorer, choose_blend
from forecasting_assets.modeling.train import (
    Encoder,
    FoldOutput,
    GroupTraining,
    assemble_folds,
    blend_parts,
)
from forecasting_assets.settings import write_parquet_atomic

logger = logging.getLogger(__name__)

MODEL = contracts.MODEL_KEY


class MLflowLike(Protocol):
    """What the workflows need from the MLflow resource."""

    def start_run(self, run_name: str | None = None, tags: dict[str, Any] | None = None) -> Any: ...

    def client(self) -> Any: ...


def baseline_metrics_for(
    panel: Panel, folds: list[Fold], given: pl.DataFrame | None, scorer: FoldScorer
) -> pl.DataFrame:
    """The baselines' backtest metrics on ``folds``: reuse ``given`` (the baselines asset) if it was
    scored on the same folds (checked via seasonal naive), else recompute."""
    if given is not None and given.height:
        try:
            if sorted(set(given["fold"].to_list())) != [f.k for f in folds]:
                raise KeyError("different folds")
            for fold in folds:
                sn = scorer.seasonal_naive_wrmsse(fold.k)
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
    folds: list[list[int]]
    wrmsse: float
    """Mean WRMSSE over the folds."""
    wrmsse_seasonal_naive: float
    wrmsse_ratio: float
    """The headline: mean over the folds of the WRMSSE ratio to seasonal naive."""
    wrmsse_ratio_min: float
    wrmsse_ratio_max: float
    fold_ratios: dict[str, float]
    part_ratios: dict[str, float]
    rounds: dict[str, int]
    recursive_weight: dict[str, float]
    level_wrmsse: dict[str, float]
    """Mean WRMSSE over the folds per M5 level."""
    baseline_ratios: dict[str, float]
    """Each baseline's mean ratio to seasonal naive over the folds."""
    prediction_stats: dict[str, float]
    coverage_80: float
    """Mean 80 % interval coverage over the folds (each calibrated on the others)."""
    wspl_ratio: float
    """Mean over the folds of the quantiles' WSPL over seasonal naive's (each fold's quantiles
    calibrated on the other folds)."""
    wspl_ratio_max: float
    wspl: dict[str, dict[str, float]]
    """WSPL per model (the model, ``seasonal_naive``, ``naive_spread``) and fold."""
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


def _choose(
    outputs: list[FoldOutput], scorer: FoldScorer, series_store: np.ndarray, s: TrainingSettings
) -> BlendChoice:
    choice = choose_blend(outputs, scorer, series_store, per_store=s.per_store_weights)
    if s.recursive_weight is None or len(choice.rounds) < 2:
        return choice
    fixed = dict.fromkeys(choice.recursive_weight, float(s.recursive_weight))
    w = np.array([fixed[x] for x in series_store.tolist()])
    mean = scorer.mean_ratio({o.fold.k: o.blend(choice.rounds, w) for o in outputs})
    return BlendChoice(choice.rounds, fixed, mean, choice.part_mean_ratio)


def calibrate_quantiles(
    panel: Panel, forecasts: dict[int, np.ndarray], folds: Sequence[Fold], scorer: FoldScorer
) -> tuple[QuantileCalibration, pl.DataFrame, pl.DataFrame]:
    """The quantile calibration from every fold; and, for each fold, from a calibration fitted on
    the other folds only: its coverage, and its WSPL over the 12 levels and the nine M5 quantiles
    next to the two references (seasonal naive's error quantiles and the naive spread)."""
    by_k = {f.k: f for f in folds}
    ids = panel.hierarchy["id"].cast(pl.String).to_list()
    m5 = [QUANTILES.index(q) for q in M5_QUANTILES]
    cov_rows: list[dict[str, object]] = []
    wspl_rows: list[dict[str, object]] = []
    for k, fc in forecasts.items():
        others = [j for j in forecasts if j != k] or [k]
        cal = QuantileCalibration.fit(
            [forecasts[j] for j in others], [panel.actuals(by_k[j]) for j in others],
            panel.hierarchy,
        )  # fmt: skip
        actual = panel.actuals(by_k[k])
        cov_rows.extend(coverage_rows(MODEL, k, actual, cal.predict(fc, ids)))
        ev, hist = scorer.evaluator(k), panel.history(by_k[k].origin)
        candidates = {
            MODEL: {lv: q[..., m5] for lv, q in cal.level_forecasts(fc, panel.hierarchy).items()},
            "seasonal_naive": quantiles_by_level(ev, hist, seasonal_naive_quantiles, fc.shape[1]),
            "naive_spread": quantiles_by_level(ev, hist, naive_spread_quantiles, fc.shape[1]),
        }
        wspl_rows.extend({"model": m, "fold": k, "wspl": ev.wspl(actual, q, M5_QUANTILES)}
                         for m, q in candidates.items())  # fmt: skip
    calibration = QuantileCalibration.fit(
        list(forecasts.values()), [panel.actuals(by_k[k]) for k in forecasts], panel.hierarchy
    )
    coverage = pl.DataFrame(cov_rows, schema={
        "model": pl.String, "fold": pl.Int32, "kind": pl.String, "quantile": pl.Float64,
        "coverage": pl.Float64, "coverage_strict": pl.Float64})  # fmt: skip
    wspl = pl.DataFrame(wspl_rows, schema={"model": pl.String, "fold": pl.Int32,
                                           "wspl": pl.Float64})  # fmt: skip
    return calibration, coverage, wspl


def fold_forecast_frame(
    panel: Panel, folds: Sequence[Fold], forecasts: dict[int, np.ndarray]
) -> pl.DataFrame:
    """One row per series x fold day: ``id, fold, d, forecast, actual`` (the backtest's forecasts,
    for the inventory validation and outside scoring)."""
    ids = panel.hierarchy["id"]
    frames = []
    for f in folds:
        n, h = forecasts[f.k].shape
        frames.append(
            pl.DataFrame(
                {
                    "id": ids.gather(np.repeat(np.arange(n), h)),
                    "fold": np.full(n * h, f.k, np.int16),
                    "d": np.tile(np.arange(f.start, f.end + 1, dtype=np.int16), n),
                    "forecast": forecasts[f.k].ravel().astype(np.float32),
                    "actual": panel.actuals(f).ravel().astype(np.float32),
                }
            )
        )
    return pl.concat(frames)


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
    trained: Sequence[GroupTraining] = (),
) -> TrainingResult:
    """Backtest on the fold plan, choose trees and blend weights on the mean over the folds, train
    the final model, log it to MLflow, register it and apply the gate.

    ``trained``: groups already trained elsewhere (the scale-out location's store partitions);
    the others are trained here, one at a time.
    Any exception ends the MLflow run as FAILED before the alias is touched. Exports
    (backtest_metrics.parquet, interval_coverage.parquet) are written only after success.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan_training(features, sales_long, feature_columns, categorical_columns, settings,
                         extra_columns)  # fmt: skip
    panel, folds, groups, specs, params = (
        plan.panel,
        plan.folds,
        plan.groups,
        plan.specs,
        plan.params,
    )
    start_d, series_store = plan.start_d, plan.series_store
    dv = data_version(panel)
    fdef = fold_definition(folds)
    timings["plan"] = time.perf_counter() - t0

    with mlflow_resource.start_run(run_name="demand_model", tags={"data_version": dv}) as run:
        run_id = run.info.run_id
        mlflow.log_params(
            {
                "train_start_d": start_d,
                "train_start_d_requested": settings.train_start_d,
                "train_end_d": panel.last_day,
                "horizon": settings.horizon,
                "n_folds": len(folds),
                "fold_definition": fdef,
                "num_boost_round": settings.num_boost_round,
                "recursive_boost_round": settings.part_rounds().get("recursive"),
                "parts": ",".join(settings.parts),
                "direct_reads_origin": settings.direct_reads_origin,
                "recursive_weight": settings.recursive_weight,
                "per_store_weights": settings.per_store_weights,
                "min_store_series": settings.min_store_series,
                "model_groups": json.dumps(groups),
                "fold_reuse_days": settings.fold_reuse_days,
                "part_params": json.dumps(settings.part_params, sort_keys=True),
                "max_train_rows": settings.max_train_rows,
                "max_window_rows": settings.max_window_rows,
                "n_series": panel.hierarchy.height,
                "feature_columns": json.dumps(sorted({c for s in specs.values()
                                                       for c in s.feature_columns})),
                **{f"lgb_{k}": v for k, v in params.items()},
            }
        )  # fmt: skip
        # 1. Walk-forward backtest of the model's parts; the baselines on the same folds.
        t = time.perf_counter()
        key = plan.fingerprint
        done = {g.group: g for g in trained if g.plan == key}
        logger.info("groups trained elsewhere: %s", sorted(done) or "none")
        trainings = [done.get(g) or plan.train(features.lazy(), g, encoder)
                     for g in sorted(set(groups.values()))]  # fmt: skip
        outputs = assemble_folds(trainings, panel, folds)
        timings["backtest_and_final_models"] = time.perf_counter() - t
        t = time.perf_counter()
        scorer = FoldScorer(panel, folds)
        base = baseline_metrics_for(panel, folds, baseline_metrics, scorer)
        # 2. Trees and blend weights chosen on the mean over the folds.
        choice = _choose(outputs, scorer, series_store, settings)
        w_series = np.array([choice.recursive_weight[s] for s in series_store.tolist()])
        forecasts = {o.fold.k: o.blend(choice.rounds, w_series) for o in outputs}
        rows: list[dict[str, object]] = []
        for out in outputs:
            ev, actual = scorer.evaluator(out.fold.k), panel.actuals(out.fold)
            rows.extend(score_rows(MODEL, out.fold, ev, actual, forecasts[out.fold.k]))
            for part, trees in choice.rounds.items():
                rows.extend(score_rows(f"{MODEL}_{part}", out.fold, ev, actual,
                                       out.parts[part][trees]))  # fmt: skip
        model_metrics = metrics_frame(rows)
        all_metrics = validate_export(
            contracts.BACKTEST_METRICS_FILE,
            pl.concat([model_metrics, base.select(model_metrics.columns)]),
        )
        head = headline(all_metrics, MODEL)
        calibration, coverage, wspl = calibrate_quantiles(panel, forecasts, folds, scorer)
        wspl_ratio = (
            wspl.pivot(on="model", index="fold", values="wspl")
            .select(pl.col(MODEL) / pl.col("seasonal_naive"))
            .to_series()
        )
        timings["scoring"] = time.perf_counter() - t

        main = model_metrics.filter(pl.col("model") == MODEL)
        level_wr = {lv: float(v) for lv, v in main.group_by("level").agg(pl.col("wrmsse").mean())
                    .sort("level").iter_rows()}  # fmt: skip
        bottom = (
            main.filter(pl.col("level") == "all")
            .select(pl.col("mae", "rmse", "bias").mean())
            .row(0, named=True)
        )
        cov80 = coverage.filter((pl.col("kind") == "interval") & (pl.col("quantile") == 0.8))
        cov80_value = float(cov80["coverage"].mean()) if cov80.height else float("nan")  # type: ignore[arg-type]
        baseline_ratios = {m: headline(all_metrics, m).ratio_mean
                           for m in base["model"].unique().sort().to_list()}  # fmt: skip
        part_ratios = {p: headline(all_metrics, f"{MODEL}_{p}").ratio_mean for p in choice.rounds}
        mlflow.log_metrics(
            {
                "wrmsse": head.wrmsse_mean,
                "wrmsse_seasonal_naive": head.baseline_wrmsse_mean,
                "wrmsse_ratio": head.ratio_mean,
                "wrmsse_ratio_min": head.ratio_min,
                "wrmsse_ratio_max": head.ratio_max,
                "mae": float(bottom["mae"]),
                "rmse": float(bottom["rmse"]),
                "bias": float(bottom["bias"]),
                "coverage_80": cov80_value,
                "wspl_ratio": float(wspl_ratio.mean()),  # type: ignore[arg-type]
                **{f"wspl_{r['model']}_fold{r['fold']}": r["wspl"] for r in wspl.iter_rows(named=True)},
                **{f"wrmsse_ratio_fold{k}": v for k, v in head.ratios.items()},
                **{f"wrmsse_ratio_{MODEL}_{p}": v for p, v in part_ratios.items()},
                **{f"wrmsse_ratio_{m}": v for m, v in baseline_ratios.items()},
                **{f"rounds_{p}": float(v) for p, v in choice.rounds.items()},
                **{f"wrmsse_{r['model']}_fold{r['fold']}_{r['level']}": float(r["wrmsse"])
                   for r in all_metrics.iter_rows(named=True)},
            }
        )  # fmt: skip
        mlflow.log_dict({"rounds": choice.rounds, "recursive_weight": choice.recursive_weight,
                         "part_mean_ratio": choice.part_mean_ratio}, "blend_choice.json")  # fmt: skip

        # 3. The final members (trained on all history) with the chosen trees and weights.
        for g in trainings:
            g.member.iterations = dict(choice.rounds)
        model = ModelFamily({g.group: g.member for g in trainings}, groups,
                            choice.recursive_weight, float(np.mean(w_series)))  # fmt: skip
        horizon_pred = np.concatenate([
            blend_parts(g.horizon_parts, choice.rounds,
                        np.array([choice.recursive_weight[s] for s in g.stores])).ravel()
            for g in trainings
        ])  # fmt: skip
        stats = _prediction_stats(
            np.concatenate([horizon_pred, *[f.ravel() for f in forecasts.values()]])
        )

        # 4. Log artifacts and the pyfunc model; register; gate.
        t = time.perf_counter()
        imp = model.importance()
        mlflow.log_dict({r["feature"]: {"gain": r["gain"], "split": r["split"]} for r in imp.iter_rows(named=True)},
                        "feature_importance.json")  # fmt: skip
        mlflow.log_dict(calibration.to_dict(), "quantile_calibration.json")
        if catalog_path is not None and Path(catalog_path).exists():
            mlflow.log_artifact(str(catalog_path))
        with tempfile.TemporaryDirectory() as tmp:
            for frame, name in ((all_metrics, contracts.BACKTEST_METRICS_FILE),
                                (coverage, contracts.INTERVAL_COVERAGE_FILE)):  # fmt: skip
                frame.write_parquet(Path(tmp) / name)
                mlflow.log_artifact(str(Path(tmp) / name))
            arts = write_model_artifacts(Path(tmp) / "model", model, calibration.to_dict())
            example = model.input_spec.input_frame(trainings[-1].example)
            signature = infer_signature(example, model.predict(pl.from_pandas(example)))
            info = mlflow.pyfunc.log_model(
                name="model", python_model=LightGBMDemandModel(), artifacts=arts, signature=signature,
                input_example=example, registered_model_name=contracts.MODEL_NAME,
                pip_requirements=["lightgbm", "polars", "numpy", "pandas", "mlflow"],
            )  # fmt: skip
        version = str(info.registered_model_version)
        client = mlflow_resource.client()
        registry.tag_version(client, version, {
            registry.TAG_WRMSSE: repr(head.wrmsse_mean), registry.TAG_DATA_VERSION: dv,
            registry.TAG_FOLDS: fdef, "wrmsse_ratio": repr(head.ratio_mean),
            "wrmsse_seasonal_naive": repr(head.baseline_wrmsse_mean), "run_id": run_id,
            "train_start_d": start_d, "train_end_d": panel.last_day})  # fmt: skip
        champion = registry.get_champion(client)
        decision = registry.decide(head.wrmsse_mean, dv, fdef, champion)
        registry.apply_decision(client, version, decision)
        mlflow.set_tags({"promotion": "promoted" if decision.promote else "rejected",
                         "promotion_reason": decision.reason, "model_version": version})  # fmt: skip
        timings["mlflow"] = time.perf_counter() - t

    # The backtest exports describe the champion, the model the forecasts come from; a rejected
    # challenger's backtest stays in its MLflow run.
    if decision.promote:
        exports_dir = Path(exports_dir)
        write_parquet_atomic(all_metrics, exports_dir / contracts.BACKTEST_METRICS_FILE)
        write_parquet_atomic(coverage, exports_dir / contracts.INTERVAL_COVERAGE_FILE)
        write_parquet_atomic(fold_forecast_frame(panel, folds, forecasts),
                             exports_dir / contracts.BACKTEST_FORECASTS_FILE)  # fmt: skip
    timings["total"] = time.perf_counter() - t0
    return TrainingResult(
        run_id=run_id, model_version=version, promoted=decision.promote,
        promotion_reason=decision.reason,
        champion_version=version if decision.promote else (champion.version if champion else None),
        data_version=dv, folds=[[f.k, f.start, f.end] for f in folds],
        wrmsse=head.wrmsse_mean, wrmsse_seasonal_naive=head.baseline_wrmsse_mean,
        wrmsse_ratio=head.ratio_mean, wrmsse_ratio_min=head.ratio_min,
        wrmsse_ratio_max=head.ratio_max, fold_ratios={str(k): v for k, v in head.ratios.items()},
        part_ratios=part_ratios, rounds=choice.rounds, recursive_weight=choice.recursive_weight,
        level_wrmsse=level_wr, baseline_ratios=baseline_ratios, prediction_stats=stats,
        coverage_80=cov80_value, wspl_ratio=float(wspl_ratio.mean()),  # type: ignore[arg-type]
        wspl_ratio_max=float(wspl_ratio.max()),  # type: ignore[arg-type]
        wspl={m: {str(r["fold"]): r["wspl"] for r in wspl.filter(pl.col("model") == m).iter_rows(named=True)}
              for m in wspl["model"].unique().sort().to_list()},
        seconds=timings,
    )  # fmt: skip
