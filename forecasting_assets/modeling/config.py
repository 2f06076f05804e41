"""The training configuration (pure; the ``demand_model`` asset's ``dg.Config`` mirrors it)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from forecasting_assets import contracts
from forecasting_assets.modeling.backtest import SEASONAL_LAGS, FoldPlan
from forecasting_assets.modeling.boosters import DEFAULT_PART_PARAMS
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE


@dataclass
class TrainingSettings:
    """Training configuration (the ``demand_model`` asset's ``dg.Config`` has the same fields)."""

    train_start_d: int = 700
    recent_folds: int = 4
    seasonal_lags: tuple[int, ...] = SEASONAL_LAGS
    horizon: int = contracts.HORIZON
    num_boost_round: int = 125
    """Most trees per part; the backtest scores 1/4, 2/4, 3/4 and all of them and keeps, per part,
    the number with the best mean over the folds."""
    recursive_boost_round: int | None = 50
    """Cap on the recursive part's trees (None: ``num_boost_round`` like the direct part); the
    recursive part feeds its own predictions back, and more trees overfit it on the folds."""
    params: dict[str, Any] = field(default_factory=dict)
    part_params: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_PART_PARAMS)
    )
    """LightGBM parameters of one part only (part -> parameters), over ``params``."""
    parts: tuple[str, ...] = (DIRECT, RECURSIVE)
    direct_reads_origin: bool = True
    """The direct part also reads the recent features as of the forecast origin and the days
    ahead (1..``horizon``): one horizon-aware model instead of lags >= 28 only."""
    recursive_weight: float | None = None
    """Weight of the recursive part; None: chosen on the mean over the folds."""
    per_store_weights: bool = False
    """Refine the recursive weight store by store (on the same mean over folds)."""
    min_store_series: int = 0
    """Stores with at least this many series get their own model; 0: one global model, or one per
    store when the global model's window would not fit in ``max_window_rows``."""
    part_min_store_series: dict[str, int] = field(default_factory=dict)
    """``min_store_series`` of one part only (part -> threshold): e.g. ``{"recursive": 1000}``
    gives the big stores their own recursive part next to a global direct part."""
    fold_reuse_days: int = 0
    """A fold whose origin is at most this many days after the last trained fold's is forecast by
    that fold's model (staler, never leaking): fewer trainings; 0: every fold trains its own."""
    max_train_rows: int = 3_000_000
    """Training rows sampled per fold (0: all), shared by the members by their share of the
    series (the global member: every store's rows)."""
    part_max_train_rows: dict[str, int] = field(default_factory=dict)
    """``max_train_rows`` of one part only (part -> rows), shared by the members the same way."""
    max_window_rows: int = 16_000_000
    seed: int = 42
    seeds: int = 1
    """Boosters per part, averaged (seed bagging): the i-th on the row sample and with the
    LightGBM seed of ``seed + i``."""
    num_threads: int = 2

    def part_rounds(self) -> dict[str, int]:
        """Most trees of each part."""
        rounds = dict.fromkeys(self.parts, self.num_boost_round)
        if RECURSIVE in rounds and self.recursive_boost_round is not None:
            rounds[RECURSIVE] = min(self.recursive_boost_round, self.num_boost_round)
        return rounds

    def min_series(self, part: str) -> int:
        """The ``min_store_series`` of ``part``."""
        return self.part_min_store_series.get(part, self.min_store_series)

    def max_rows(self, part: str) -> int:
        """The ``max_train_rows`` of ``part``."""
        return self.part_max_train_rows.get(part, self.max_train_rows)

    def fold_plan(self) -> FoldPlan:
        """The backtest folds (shared with the baselines asset)."""
        return FoldPlan(self.recent_folds, tuple(self.seasonal_lags), self.horizon)
