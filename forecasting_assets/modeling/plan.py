"""The training plan: what every model group's training shares (panel, folds, store groups,
window, specs, parameters), fixed before any model is trained, and one group's training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.backtest import Fold, Panel, build_panel, fold_definition
from forecasting_assets.modeling.boosters import lgb_params
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.family import GLOBAL, store_groups
from forecasting_assets.modeling.recent import CONTEXT_DAYS, RECENT_COLUMNS, with_recent_features
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE, ModelSpec, model_specs
from forecasting_assets.modeling.train import Encoder, GroupTraining, train_group

MIN_TRAIN_DAYS = 364
"""The first fold trains on at least a year of history (the window moves earlier if needed)."""


def data_version(panel: Panel) -> str:
    """Content fingerprint of the history (sales, prices, ids) the model was scored on."""
    h = hashlib.blake2b(digest_size=12)
    h.update("|".join(panel.hierarchy["id"].cast(pl.String).to_list()).encode())
    h.update(np.ascontiguousarray(panel.sales).tobytes())
    h.update(np.ascontiguousarray(panel.price).tobytes())
    return f"d{panel.first_day}-d{panel.last_day}-{h.hexdigest()}"


def effective_train_start(
    requested: int,
    folds: Sequence[Fold],
    first_day: int,
    n_series: int = 1,
    max_window_rows: int = 0,
) -> int:
    """The first training day: as requested, but

    * later if the window (with the recent-feature context and the horizon) would hold more than
      ``max_window_rows`` series-days (``> 0``): a memory bound for very large data;
    * earlier if the first fold would have less than a year of training days (small data);
    * never before the first day.
    """
    start = requested
    last = max(folds, key=lambda f: f.end)
    if max_window_rows > 0:
        window_end = last.end + last.horizon  # the horizon rows are loaded too
        start = max(start, window_end + CONTEXT_DAYS + 1 - max_window_rows // max(n_series, 1))
    first_origin = min(f.origin for f in folds)
    return max(first_day, min(start, first_origin - MIN_TRAIN_DAYS + 1))


def model_groups(
    series_per_store: dict[str, int],
    settings: TrainingSettings,
    folds: Sequence[Fold],
    first_day: int,
) -> dict[str, dict[str, str]]:
    """The model group of every store, part by part (part -> store -> group): as the part's
    ``min_store_series`` says, or, when it is 0, one global member unless its window would have
    to start later than requested to fit in ``max_window_rows``; then every store gets its own
    member, which bounds the memory instead of the window."""
    for name in ("part_min_store_series", "part_max_train_rows"):
        unknown = set(getattr(settings, name)) - {DIRECT, RECURSIVE}
        if unknown:
            raise ValueError(f"{name} names {sorted(unknown)}, not {DIRECT!r} or {RECURSIVE!r}")
    requested = effective_train_start(settings.train_start_d, folds, first_day)
    bounded = effective_train_start(settings.train_start_d, folds, first_day,
                                    sum(series_per_store.values()), settings.max_window_rows)  # fmt: skip
    auto = 1 if bounded > requested else 0
    return {k: store_groups(series_per_store, settings.min_series(k) or auto)
            for k in settings.parts}  # fmt: skip


@dataclass
class TrainingPlan:
    """What every group's training shares, fixed before any model is trained: the panel, folds,
    model groups, training window, specs and LightGBM parameters."""

    settings: TrainingSettings
    panel: Panel
    folds: list[Fold]
    groups: dict[str, dict[str, str]]
    """part -> store -> the group whose member serves that part there (the store itself, or
    :data:`GLOBAL`)."""
    columns: list[str]
    start_d: int
    specs: dict[str, ModelSpec]
    params: dict[str, Any]

    @property
    def series_store(self) -> np.ndarray:
        """The store of every panel series."""
        return self.panel.hierarchy["store_id"].cast(pl.String).to_numpy()

    @cached_property
    def fingerprint(self) -> str:
        """Identity of everything a group's training depends on (data, folds, window, specs,
        parameters): a group trained elsewhere is reused only under the same fingerprint."""
        doc = {
            "settings": asdict(self.settings), "data": data_version(self.panel),
            "folds": fold_definition(self.folds), "groups": self.groups, "start": self.start_d,
            "specs": {k: v.to_dict() for k, v in self.specs.items()}, "params": self.params,
        }  # fmt: skip
        return hashlib.blake2b(json.dumps(doc, sort_keys=True, default=str).encode(),
                               digest_size=12).hexdigest()  # fmt: skip

    @property
    def group_keys(self) -> list[str]:
        """Every group with a member to train, sorted."""
        return sorted({g for routing in self.groups.values() for g in routing.values()})

    def serves(self, group: str) -> dict[str, list[str]]:
        """The stores a group's member serves, part by part (only the parts it has)."""
        out = {k: [s for s, g in routing.items() if g == group]
               for k, routing in self.groups.items()}  # fmt: skip
        return {k: stores for k, stores in out.items() if stores}

    def group_rows(self, features: pl.LazyFrame, group: str) -> pl.DataFrame:
        """The rows a group's member learns from (one store's, or every store's for the global
        model) with the recent features: one group at a time bounds the memory."""
        rows = features.filter(pl.col("d") >= self.start_d - CONTEXT_DAYS)
        if group != GLOBAL:  # compared in the column's own dtype: no string cast of every row
            rows = rows.filter(pl.col("store_id") == group)
        return with_recent_features(rows.select(self.columns).collect())

    def train(
        self, features: pl.LazyFrame, group: str, encoder: Encoder | None = None
    ) -> GroupTraining:
        """Backtest and final model of one group (a store partition's work in the scale-out
        location); its share of each part's training rows follows its share of the series."""
        s = self.settings
        share = 1.0 if group == GLOBAL else float((self.series_store == group).mean())
        serves = self.serves(group)
        trained = train_group(
            self.group_rows(features, group), group, serves, self.folds, self.specs,
            self.params, s.part_rounds(), self.start_d, self.panel.last_day, encoder,
            {k: round(s.max_rows(k) * share) for k in serves}, s.seed, s.fold_reuse_days,
            s.part_params, s.seeds,
        )  # fmt: skip
        trained.plan = self.fingerprint
        return trained


def plan_training(
    features: pl.LazyFrame | pl.DataFrame,
    sales_long: pl.LazyFrame | pl.DataFrame,
    feature_columns: Sequence[str],
    categorical_columns: Sequence[str],
    settings: TrainingSettings,
    extra_columns: Sequence[str] = (),
) -> TrainingPlan:
    """The shared plan of a training on ``sales_long`` and ``features``."""
    panel = build_panel(sales_long)
    folds = settings.fold_plan().folds(panel.last_day, panel.first_day)
    stores, counts = np.unique(panel.hierarchy["store_id"].cast(pl.String).to_numpy(),
                               return_counts=True)  # fmt: skip
    per_store = dict(zip(stores.tolist(), counts.tolist(), strict=True))
    groups = model_groups(per_store, settings, folds, panel.first_day)
    largest = max(panel.hierarchy.height if g == GLOBAL else per_store[g]
                  for routing in groups.values() for g in routing.values())  # fmt: skip
    schema = features.lazy().collect_schema()
    columns = list(dict.fromkeys(["id", "d", "sales", "is_launched", "store_id", *feature_columns,
                                  *[c for c in extra_columns if c in schema]]))  # fmt: skip
    start_d = effective_train_start(settings.train_start_d, folds, panel.first_day, largest,
                                    settings.max_window_rows)  # fmt: skip
    specs = model_specs(
        {**{c: schema[c] for c in columns}, **dict.fromkeys(RECENT_COLUMNS, pl.Float32())},
        feature_columns, categorical_columns, settings.parts,
        settings.horizon if settings.direct_reads_origin else 0,
    )  # fmt: skip
    params = lgb_params(settings.params, seed=settings.seed, num_threads=settings.num_threads)
    return TrainingPlan(settings, panel, folds, groups, columns, start_d, specs, params)
