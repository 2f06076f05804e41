"""The training workflow: backtest on the fold plan, choices on the mean over folds, the final
model, MLflow logging, registration and the promotion gate.

The MLflow access is passed in (any object with ``start_run()`` and ``client()``, like the
Dagster ``mlflow`` resource), so the workflow runs the same from tests, benchmarks and Dagster.
The scores themselves come from :mod:`~forecasting_assets.modeling.scoring`.
"""

from __future__ import annotations

import json
import logging
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
from forecasting_assets.modeling import registry
from forecasting_assets.modeling.backtest import fold_definition
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.family import ModelFamily
from forecasting_assets.modeling.plan import TrainingPlan, data_version, plan_training
from forecasting_assets.modeling.predict import LightGBMDemandModel, write_model_artifacts
from forecasting_assets.modeling.scoring import (
    BacktestScores,
    baseline_metrics_for,
    fold_forecast_frame,
    prediction_stats,
    score_backtest,
)
from forecasting_assets.modeling.selection import (
    BlendChoice,
    FoldScorer,
    choose_blend,
    out_of_fold_forecasts,
    per_series,
)
from forecasting_assets.modeling.train import (
    Encoder,
    FoldOutput,
    GroupTraining,
    assemble_folds,
    blend_parts,
    in_panel_order,
)
from forecasting_assets.settings import write_parquet_atomic

logger = logging.getLogger(__name__)


class MLflowLike(Protocol):
    """What the workflows need from the MLflow resource."""

    def start_run(self, run_name: str | None = None, tags: dict[str, Any] | None = None) -> Any: ...

    def client(self) -> Any: ...


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
    wrmsse_ratio_out_of_fold: float | None
    """Mean over the folds of each fold's ratio with the trees and weights chosen on the other
    folds only (None with one fold): the headline without the in-sample choice."""
    out_of_fold_ratios: dict[str, float]
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


def _choose(
    outputs: Sequence[FoldOutput], scorer: FoldScorer, series_store: np.ndarray, s: TrainingSettings
) -> BlendChoice:
    choice = choose_blend(outputs, scorer, series_store, per_store=s.per_store_weights)
    if s.recursive_weight is None or len(choice.rounds) < 2:
        return choice
    fixed = dict.fromkeys(choice.recursive_weight, float(s.recursive_weight))
    w = per_series(fixed, series_store)
    mean = scorer.mean_ratio({o.fold.k: o.blend(choice.rounds, w) for o in outputs})
    return BlendChoice(choice.rounds, fixed, mean, choice.part_mean_ratio)


def _run_params(plan: TrainingPlan, settings: TrainingSettings, fdef: str) -> dict[str, Any]:
    """The MLflow parameters of a training: its window, folds, settings and LightGBM params."""
    return {
        "train_start_d": plan.start_d,
        "train_start_d_requested": settings.train_start_d,
        "train_end_d": plan.panel.last_day,
        "horizon": settings.horizon,
        "n_folds": len(plan.folds),
        "fold_definition": fdef,
        "num_boost_round": settings.num_boost_round,
        "recursive_boost_round": settings.part_rounds().get("recursive"),
        "parts": ",".join(settings.parts),
        "direct_reads_origin": settings.direct_reads_origin,
        "recursive_weight": settings.recursive_weight,
        "per_store_weights": settings.per_store_weights,
        "min_store_series": settings.min_store_series,
        "part_min_store_series": json.dumps(settings.part_min_store_series, sort_keys=True),
        "model_groups": json.dumps(plan.groups),
        "fold_reuse_days": settings.fold_reuse_days,
        "part_params": json.dumps(settings.part_params, sort_keys=True),
        "max_train_rows": settings.max_train_rows,
        "part_max_train_rows": json.dumps(settings.part_max_train_rows, sort_keys=True),
        "max_window_rows": settings.max_window_rows,
        "n_series": plan.panel.hierarchy.height,
        "feature_columns": json.dumps(sorted({c for s in plan.specs.values()
                                               for c in s.feature_columns})),
        **{f"lgb_{k}": v for k, v in plan.params.items()},
    }  # fmt: skip


def _final_family(
    trainings: Sequence[GroupTraining],
    plan: TrainingPlan,
    choice: BlendChoice,
    recursive_weights: np.ndarray,
) -> tuple[ModelFamily, np.ndarray]:
    """The final members (trained on all history) with the chosen trees and weights, and their
    blended forecast of the horizon after the data."""
    for g in trainings:
        g.member.iterations = dict(choice.rounds)
    model = ModelFamily({g.group: g.member for g in trainings}, plan.groups,
                        choice.recursive_weight, float(np.mean(recursive_weights)))  # fmt: skip
    horizon = in_panel_order(trainings, plan.panel, lambda g: g.horizon_parts)
    horizon_pred = blend_parts(horizon, choice.rounds, recursive_weights).ravel()
    return model, horizon_pred


def _log_model(
    model: ModelFamily,
    example_rows: pl.DataFrame,
    scores: BacktestScores,
    catalog_path: Path | None,
) -> str:
    """Log the artifacts and the pyfunc model to the active run and register it; its version."""
    imp = model.importance()
    mlflow.log_dict({r["feature"]: {"gain": r["gain"], "split": r["split"]} for r in imp.iter_rows(named=True)},
                    "feature_importance.json")  # fmt: skip
    mlflow.log_dict(scores.calibration.to_dict(), "quantile_calibration.json")
    if catalog_path is not None and Path(catalog_path).exists():
        mlflow.log_artifact(str(catalog_path))
    with tempfile.TemporaryDirectory() as tmp:
        for frame, name in ((scores.metrics, contracts.BACKTEST_METRICS_FILE),
                            (scores.coverage, contracts.INTERVAL_COVERAGE_FILE)):  # fmt: skip
            frame.write_parquet(Path(tmp) / name)
            mlflow.log_artifact(str(Path(tmp) / name))
        arts = write_model_artifacts(Path(tmp) / "model", model, scores.calibration.to_dict())
        example = model.input_spec.input_frame(example_rows)
        signature = infer_signature(example, model.predict(pl.from_pandas(example)))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=LightGBMDemandModel(), artifacts=arts, signature=signature,
            input_example=example, registered_model_name=contracts.MODEL_NAME,
            pip_requirements=["lightgbm", "polars", "numpy", "pandas", "mlflow"],
        )  # fmt: skip
    return str(info.registered_model_version)


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
    Any exception ends the MLflow run as FAILED before the alias is touched. The backtest exports
    are written only after success, and only for a promoted model.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan_training(features, sales_long, feature_columns, categorical_columns, settings,
                         extra_columns)  # fmt: skip
    panel, folds = plan.panel, plan.folds
    dv = data_version(panel)
    fdef = fold_definition(folds)
    timings["plan"] = time.perf_counter() - t0

    with mlflow_resource.start_run(run_name="demand_model", tags={"data_version": dv}) as run:
        run_id = run.info.run_id
        mlflow.log_params(_run_params(plan, settings, fdef))
        # 1. Walk-forward backtest of the model's parts (and the final members).
        t = time.perf_counter()
        done = {g.group: g for g in trained if g.plan == plan.fingerprint}
        logger.info("groups trained elsewhere: %s", sorted(done) or "none")
        trainings = [done.get(g) or plan.train(features.lazy(), g, encoder)
                     for g in plan.group_keys]  # fmt: skip
        outputs = assemble_folds(trainings, panel, folds)
        timings["backtest_and_final_models"] = time.perf_counter() - t
        # 2. Trees and blend weights chosen on the mean over the folds; scores next to the
        # baselines on the same folds.
        t = time.perf_counter()
        scorer = FoldScorer(panel, folds)
        base = baseline_metrics_for(panel, folds, baseline_metrics, scorer)
        choice = _choose(outputs, scorer, plan.series_store, settings)
        w_series = per_series(choice.recursive_weight, plan.series_store)
        held_out = out_of_fold_forecasts(
            outputs, plan.series_store, lambda o: _choose(o, scorer, plan.series_store, settings)
        )
        scores = score_backtest(outputs, choice, w_series, panel, folds, scorer, base, held_out)
        head = scores.head
        timings["scoring"] = time.perf_counter() - t
        mlflow.log_metrics(scores.mlflow_metrics(choice.rounds))
        mlflow.log_dict({"rounds": choice.rounds, "recursive_weight": choice.recursive_weight,
                         "part_mean_ratio": choice.part_mean_ratio}, "blend_choice.json")  # fmt: skip
        # 3. The final model; 4. logged, registered and gated.
        model, horizon_pred = _final_family(trainings, plan, choice, w_series)
        stats = prediction_stats(
            np.concatenate([horizon_pred, *[f.ravel() for f in scores.forecasts.values()]])
        )
        t = time.perf_counter()
        version = _log_model(model, trainings[-1].example, scores, catalog_path)
        client = mlflow_resource.client()
        registry.tag_version(client, version, {
            registry.TAG_WRMSSE: repr(head.wrmsse_mean), registry.TAG_DATA_VERSION: dv,
            registry.TAG_FOLDS: fdef, "wrmsse_ratio": repr(head.ratio_mean),
            "wrmsse_seasonal_naive": repr(head.baseline_wrmsse_mean), "run_id": run_id,
            "train_start_d": plan.start_d, "train_end_d": panel.last_day})  # fmt: skip
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
        write_parquet_atomic(scores.metrics, exports_dir / contracts.BACKTEST_METRICS_FILE)
        write_parquet_atomic(scores.coverage, exports_dir / contracts.INTERVAL_COVERAGE_FILE)
        write_parquet_atomic(fold_forecast_frame(panel, folds, scores.forecasts),
                             exports_dir / contracts.BACKTEST_FORECASTS_FILE)  # fmt: skip
    timings["total"] = time.perf_counter() - t0
    wspl_ratio, oof = scores.wspl_ratio, scores.out_of_fold
    return TrainingResult(
        run_id=run_id, model_version=version, promoted=decision.promote,
        promotion_reason=decision.reason,
        champion_version=version if decision.promote else (champion.version if champion else None),
        data_version=dv, folds=[[f.k, f.start, f.end] for f in folds],
        wrmsse=head.wrmsse_mean, wrmsse_seasonal_naive=head.baseline_wrmsse_mean,
        wrmsse_ratio=head.ratio_mean, wrmsse_ratio_min=head.ratio_min,
        wrmsse_ratio_max=head.ratio_max, fold_ratios={str(k): v for k, v in head.ratios.items()},
        wrmsse_ratio_out_of_fold=None if oof is None else oof.ratio_mean,
        out_of_fold_ratios={} if oof is None else {str(k): v for k, v in oof.ratios.items()},
        part_ratios=scores.part_ratios, rounds=choice.rounds,
        recursive_weight=choice.recursive_weight, level_wrmsse=scores.level_wrmsse,
        baseline_ratios=scores.baseline_ratios, prediction_stats=stats,
        coverage_80=scores.coverage_80, wspl_ratio=float(wspl_ratio.mean()),  # type: ignore[arg-type]
        wspl_ratio_max=float(wspl_ratio.max()),  # type: ignore[arg-type]
        wspl=scores.wspl_by_model(), seconds=timings,
    )  # fmt: skip
