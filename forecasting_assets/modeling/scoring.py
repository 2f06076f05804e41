"""The backtest's scores of the chosen blend: WRMSSE per fold, level and part next to the
baselines, the quantile calibration with each fold's coverage and WSPL, and the fold forecasts.

Pure: no MLflow, no Dagster; :func:`~forecasting_assets.modeling.training.run_training` logs
and exports what :func:`score_backtest` returns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from forecasting_assets import contracts
from forecasting_assets.export_schemas import validate_export
from forecasting_assets.modeling.backtest import (
    Fold,
    Headline,
    Panel,
    backtest_baselines,
    headline,
    metrics_frame,
    score_rows,
)
from forecasting_assets.modeling.baselines import (
    naive_spread_quantiles,
    quantiles_by_level,
    seasonal_naive_quantiles,
)
from forecasting_assets.modeling.metrics import M5_QUANTILES
from forecasting_assets.modeling.quantile_calibration import QuantileCalibration
from forecasting_assets.modeling.quantiles import QUANTILES, coverage_rows
from forecasting_assets.modeling.selection import BlendChoice, FoldScorer
from forecasting_assets.modeling.train import FoldOutput

logger = logging.getLogger(__name__)

MODEL = contracts.MODEL_KEY
OUT_OF_FOLD = contracts.OUT_OF_FOLD_KEY


def _scored_on(given: pl.DataFrame, folds: list[Fold], scorer: FoldScorer) -> bool:
    """Whether ``given`` covers exactly ``folds``, with seasonal naive's WRMSSE of this panel."""
    keys = [f.k for f in folds]
    sn = given.filter((pl.col("model") == "seasonal_naive") & (pl.col("level") == "all")).sort(
        "fold"
    )
    return (
        sorted(set(given["fold"].to_list())) == keys
        and sn["fold"].to_list() == keys
        and all(math.isclose(scorer.seasonal_naive_wrmsse(k), w, rel_tol=1e-9)
                for k, w in sn.select("fold", "wrmsse").iter_rows())
    )  # fmt: skip


def baseline_metrics_for(
    panel: Panel, folds: list[Fold], given: pl.DataFrame | None, scorer: FoldScorer
) -> pl.DataFrame:
    """The baselines' backtest metrics on ``folds``: reuse ``given`` (the baselines asset) if it was
    scored on the same folds (checked via seasonal naive), else recompute."""
    if given is not None and given.height:
        if _scored_on(given, folds, scorer):
            return given
        logger.info("baseline metrics were scored on other folds/data: recomputing")
    return backtest_baselines(panel, folds)


def prediction_stats(values: np.ndarray) -> dict[str, float]:
    """Count, non-finite and negative counts, min, max and mean of the predictions."""
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


@dataclass
class BacktestScores:
    """The chosen blend's backtest, next to its parts and the baselines on the same folds."""

    forecasts: dict[int, np.ndarray]
    """The blend's forecast of each fold, ``(series, horizon)`` in panel order."""
    metrics: pl.DataFrame
    """WRMSSE etc. per model (the blend, each part, the baselines), fold and level."""
    head: Headline
    calibration: QuantileCalibration
    """Fitted on every fold (the final model's quantiles)."""
    coverage: pl.DataFrame
    """Each fold's interval coverage, from a calibration fitted on the other folds."""
    wspl: pl.DataFrame
    """Each fold's WSPL of the model and the two references (``model, fold, wspl``)."""
    part_ratios: dict[str, float]
    baseline_ratios: dict[str, float]
    level_wrmsse: dict[str, float]
    """The blend's mean WRMSSE over the folds per M5 level."""
    bottom: dict[str, float]
    """The blend's mean MAE, RMSE and bias at the bottom level."""
    coverage_80: float
    out_of_fold: Headline | None = None
    """The :data:`OUT_OF_FOLD` blend's ratios (None with fewer than two folds)."""

    @cached_property
    def wspl_ratio(self) -> pl.Series:
        """Per fold, the model's WSPL over seasonal naive's (computed once)."""
        return (
            self.wspl.pivot(on="model", index="fold", values="wspl")
            .select(pl.col(MODEL) / pl.col("seasonal_naive"))
            .to_series()
        )

    def wspl_by_model(self) -> dict[str, dict[str, float]]:
        """WSPL per model and fold (fold as a string key)."""
        return {m: {str(r["fold"]): r["wspl"]
                    for r in self.wspl.filter(pl.col("model") == m).iter_rows(named=True)}
                for m in self.wspl["model"].unique().sort().to_list()}  # fmt: skip

    def mlflow_metrics(self, rounds: dict[str, int]) -> dict[str, float]:
        """Every figure as a flat MLflow metric."""
        head = self.head
        return {
            "wrmsse": head.wrmsse_mean,
            "wrmsse_seasonal_naive": head.baseline_wrmsse_mean,
            "wrmsse_ratio": head.ratio_mean,
            "wrmsse_ratio_min": head.ratio_min,
            "wrmsse_ratio_max": head.ratio_max,
            **({} if self.out_of_fold is None else {
                "wrmsse_ratio_out_of_fold": self.out_of_fold.ratio_mean,
                "wrmsse_ratio_out_of_fold_min": self.out_of_fold.ratio_min,
                "wrmsse_ratio_out_of_fold_max": self.out_of_fold.ratio_max}),
            **{k: float(v) for k, v in self.bottom.items()},
            "coverage_80": self.coverage_80,
            "wspl_ratio": float(self.wspl_ratio.mean()),  # type: ignore[arg-type]
            **{f"wspl_{r['model']}_fold{r['fold']}": r["wspl"] for r in self.wspl.iter_rows(named=True)},
            **{f"wrmsse_ratio_fold{k}": v for k, v in head.ratios.items()},
            **{f"wrmsse_ratio_{MODEL}_{p}": v for p, v in self.part_ratios.items()},
            **{f"wrmsse_ratio_{m}": v for m, v in self.baseline_ratios.items()},
            **{f"rounds_{p}": float(v) for p, v in rounds.items()},
            **{f"wrmsse_{r['model']}_fold{r['fold']}_{r['level']}": float(r["wrmsse"])
               for r in self.metrics.iter_rows(named=True)},
        }  # fmt: skip


def score_backtest(
    outputs: Sequence[FoldOutput],
    choice: BlendChoice,
    recursive_weights: np.ndarray,
    panel: Panel,
    folds: Sequence[Fold],
    scorer: FoldScorer,
    baseline_metrics: pl.DataFrame,
    out_of_fold: Mapping[int, np.ndarray] | None = None,
) -> BacktestScores:
    """Score the blend with ``choice``'s trees and one recursive weight per series
    (``recursive_weights``), each part alone and the ``out_of_fold`` blend (by fold, see
    :func:`~forecasting_assets.modeling.selection.out_of_fold_forecasts`) on every fold;
    calibrate the quantiles."""
    forecasts = {o.fold.k: o.blend(choice.rounds, recursive_weights) for o in outputs}
    out_of_fold = out_of_fold or {}
    rows: list[dict[str, object]] = []
    for out in outputs:
        ev, actual = scorer.evaluator(out.fold.k), panel.actuals(out.fold)
        rows.extend(score_rows(MODEL, out.fold, ev, actual, forecasts[out.fold.k]))
        if out.fold.k in out_of_fold:
            rows.extend(score_rows(OUT_OF_FOLD, out.fold, ev, actual, out_of_fold[out.fold.k]))
        for part, trees in choice.rounds.items():
            rows.extend(score_rows(f"{MODEL}_{part}", out.fold, ev, actual,
                                   out.parts[part][trees]))  # fmt: skip
    model_metrics = metrics_frame(rows)
    metrics = validate_export(
        contracts.BACKTEST_METRICS_FILE,
        pl.concat([model_metrics, baseline_metrics.select(model_metrics.columns)]),
    )
    calibration, coverage, wspl = calibrate_quantiles(panel, forecasts, folds, scorer)
    main = model_metrics.filter(pl.col("model") == MODEL)
    level_wr = {lv: float(v) for lv, v in main.group_by("level").agg(pl.col("wrmsse").mean())
                .sort("level").iter_rows()}  # fmt: skip
    bottom = (
        main.filter(pl.col("level") == "all")
        .select(pl.col("mae", "rmse", "bias").mean())
        .row(0, named=True)
    )
    cov80 = coverage.filter((pl.col("kind") == "interval") & (pl.col("quantile") == 0.8))
    baselines = baseline_metrics["model"].unique().sort().to_list()
    return BacktestScores(
        forecasts=forecasts,
        metrics=metrics,
        head=headline(metrics, MODEL),
        calibration=calibration,
        coverage=coverage,
        wspl=wspl,
        part_ratios={p: headline(metrics, f"{MODEL}_{p}").ratio_mean for p in choice.rounds},
        baseline_ratios={m: headline(metrics, m).ratio_mean for m in baselines},
        level_wrmsse=level_wr,
        bottom={k: float(v) for k, v in bottom.items()},
        coverage_80=float(cov80["coverage"].mean()) if cov80.height else float("nan"),  # type: ignore[arg-type]
        out_of_fold=headline(metrics, OUT_OF_FOLD) if out_of_fold else None,
    )
