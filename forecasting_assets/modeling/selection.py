"""Choices made on the mean over the backtest folds: boosting rounds and blend weights.

Every choice minimises the mean over all folds of the WRMSSE ratio to seasonal naive, the
headline, never one fold's score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from forecasting_assets.modeling.backtest import Fold, Panel
from forecasting_assets.modeling.baselines import seasonal_naive
from forecasting_assets.modeling.metrics import WRMSSEEvaluator
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE
from forecasting_assets.modeling.train import FoldOutput

WEIGHT_GRID: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
"""Recursive-part weights tried for the blend."""


class FoldScorer:
    """WRMSSE ratio to seasonal naive of a forecast on each fold (evaluators built once)."""

    def __init__(self, panel: Panel, folds: Sequence[Fold]) -> None:
        self._folds: dict[int, tuple[WRMSSEEvaluator, np.ndarray, float]] = {}
        for f in folds:
            ev = panel.evaluator(f)
            actual = panel.actuals(f)
            sn = ev.score(actual, seasonal_naive(panel.history(f.origin), f.horizon))["all"]
            self._folds[f.k] = (ev, actual, sn)

    def evaluator(self, k: int) -> WRMSSEEvaluator:
        """Fold ``k``'s evaluator (scales and weights from the data known at its origin)."""
        return self._folds[k][0]

    def seasonal_naive_wrmsse(self, k: int) -> float:
        """Seasonal naive's WRMSSE on fold ``k`` (the ratio's denominator)."""
        return float(self._folds[k][2])

    def ratio(self, k: int, forecast: np.ndarray) -> float:
        """WRMSSE of ``forecast`` on fold ``k`` over seasonal naive's."""
        ev, actual, sn = self._folds[k]
        return float(ev.score(actual, forecast)["all"] / sn)

    def mean_ratio(self, forecasts: Mapping[int, np.ndarray]) -> float:
        """Mean over the folds of :meth:`ratio`."""
        return float(np.mean([self.ratio(k, f) for k, f in forecasts.items()]))


@dataclass(frozen=True)
class BlendChoice:
    """Trees per part and the recursive weight of every store, with the score they reached."""

    rounds: dict[str, int]
    recursive_weight: dict[str, float]
    mean_ratio: float
    part_mean_ratio: dict[str, float]


def per_series(
    weights: Mapping[str, float], series_store: Sequence[str] | np.ndarray
) -> np.ndarray:
    """Each series' weight from its store's (``series_store``: the store of every series)."""
    return np.array([weights[s] for s in series_store], np.float64)


def choose_rounds(outputs: Sequence[FoldOutput], scorer: FoldScorer) -> dict[str, float]:
    """Best number of trees of each part alone -> its mean ratio (keys ``part`` and ``part@n``)."""
    scores: dict[str, float] = {}
    for part in outputs[0].parts:
        for trees in outputs[0].parts[part]:
            scores[f"{part}@{trees}"] = scorer.mean_ratio(
                {o.fold.k: o.parts[part][trees] for o in outputs}
            )
    return scores


def choose_blend(
    outputs: Sequence[FoldOutput],
    scorer: FoldScorer,
    series_store: np.ndarray,
    per_store: bool = False,
    grid: Sequence[float] = WEIGHT_GRID,
) -> BlendChoice:
    """Trees of each part (best alone on the mean over folds), then the recursive weight: one
    for all stores, refined store by store when ``per_store`` (each store's weight with the
    others held, on the same mean)."""
    scores = choose_rounds(outputs, scorer)
    rounds: dict[str, int] = {}
    part_best: dict[str, float] = {}
    for part in outputs[0].parts:
        best = min(outputs[0].parts[part], key=lambda t, p=part: scores[f"{p}@{t}"])
        rounds[part], part_best[part] = best, scores[f"{part}@{best}"]
    stores = sorted(set(series_store.tolist()))
    if not (DIRECT in rounds and RECURSIVE in rounds):
        only = 1.0 if RECURSIVE in rounds else 0.0
        return BlendChoice(rounds, dict.fromkeys(stores, only), min(part_best.values()), part_best)

    def mean_for(w: np.ndarray | float) -> float:
        return scorer.mean_ratio({o.fold.k: o.blend(rounds, w) for o in outputs})

    w_all = min(grid, key=mean_for)
    weights = dict.fromkeys(stores, float(w_all))
    if per_store:
        for s in stores:
            held, in_store = per_series(weights, series_store), series_store == s
            weights[s] = float(min(grid, key=lambda w, h=held, sel=in_store:
                                   mean_for(np.where(sel, w, h))))  # fmt: skip
    return BlendChoice(rounds, weights, mean_for(per_series(weights, series_store)), part_best)


def out_of_fold_forecasts(
    outputs: Sequence[FoldOutput],
    series_store: np.ndarray,
    choose: Callable[[Sequence[FoldOutput]], BlendChoice],
) -> dict[int, np.ndarray]:
    """Each fold's blend with the trees and weights ``choose`` makes on the other folds only:
    the backtest without the optimism of scoring a choice on the folds it was made on. Empty
    with fewer than two folds."""
    if len(outputs) < 2:
        return {}
    forecasts: dict[int, np.ndarray] = {}
    for held in outputs:
        choice = choose([o for o in outputs if o is not held])
        weights = per_series(choice.recursive_weight, series_store)
        forecasts[held.fold.k] = held.blend(choice.rounds, weights)
    return forecasts
