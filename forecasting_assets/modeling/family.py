"""The demand model family: per-store members (direct + recursive parts) and a global one for
the small stores, as in the top M5 solutions; each part's rows are routed by store to the member
that serves that part there, and the parts blended with each store's weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.boosters import (
    fit_booster,
    importance_frame,
    origin_predict,
    predict_booster,
    recursive_predict,
)
from forecasting_assets.modeling.spec import DIRECT, RECURSIVE, ModelSpec, input_spec

if TYPE_CHECKING:
    import lightgbm as lgb

GLOBAL = "*"
"""Group key of the global model (all stores' rows), which serves the stores without their own."""


def blend(
    direct: np.ndarray, recursive: np.ndarray, recursive_weight: np.ndarray | float
) -> np.ndarray:
    """The one direct/recursive blend, ``(1 - w) * direct + w * recursive``: ``recursive_weight``
    a scalar or one weight per entry of the first axis (a row, or a series of a matrix)."""
    w = np.asarray(recursive_weight, np.float64)
    if w.ndim == 1:
        w = w.reshape(-1, *([1] * (np.ndim(direct) - 1)))
    return (1.0 - w) * direct + w * recursive


def store_groups(series_per_store: Mapping[str, int], min_series: int) -> dict[str, str]:
    """Which model serves each store: its own when it has at least ``min_series`` series
    (``min_series <= 0``: never), else the global one."""
    return {s: (s if 0 < min_series <= n else GLOBAL) for s, n in sorted(series_per_store.items())}


def for_every_part(
    store_group: Mapping[str, str], parts: Sequence[str]
) -> dict[str, dict[str, str]]:
    """The same store -> group routing for each of ``parts`` (part -> store -> group)."""
    return {k: dict(store_group) for k in parts}


@dataclass
class DemandModel:
    """The parts of one group's model: a direct and a recursive bag of boosters, one booster per
    seed (either part may be absent).

    *direct*: inputs known at the forecast origin (lags >= 28; optionally the recent features as
    of the origin and the days ahead), one prediction per row.
    *recursive*: also the recent-sales features (:mod:`~forecasting_assets.modeling.recent`);
    over a horizon it predicts day by day, feeding its predictions back as sales.
    :class:`ModelFamily` routes rows to members and blends their parts.
    """

    boosters: dict[str, list[lgb.Booster]]
    specs: dict[str, ModelSpec]
    iterations: dict[str, int] = field(default_factory=dict)
    """Trees each part predicts with (all when absent): scores the backtest's checkpoints."""

    def forecast_parts(
        self, rows: pl.DataFrame, history: np.ndarray, parts: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Each part's (of ``parts``, default all) forecast of ``rows`` (every series x the
        horizon days, sorted by id, d).

        ``history``: launched sales ``(series, days)`` up to the origin, same series order.
        """
        out = {}
        for k in self.boosters if parts is None else parts:
            booster = self.boosters[k]
            spec = self.specs[k]
            it = self.iterations.get(k)
            if k == RECURSIVE:
                out[k] = recursive_predict(booster, spec, rows, history, it)
            elif spec.reads_origin:
                out[k] = origin_predict(booster, spec, rows, history, it)
            else:
                out[k] = predict_booster(booster, rows, spec, it)
        return out


def stores_of(frame: pl.DataFrame) -> pl.Series:
    """The rows' ``store_id`` (all null, i.e. the fallback member, when the frame has none)."""
    if "store_id" in frame.columns:
        return frame.get_column("store_id")
    return pl.Series("store_id", [None] * frame.height, dtype=pl.String)


@dataclass
class ModelFamily:
    """Per-store demand models with a global one for the small stores (the top M5 solutions'
    structure). Each member is a :class:`DemandModel`; each part of a row is predicted by the
    member that serves that part in the row's store (``store_group``: the parts may be grouped
    differently, e.g. a global direct part with per-store recursive parts), and the parts are
    blended with the weights of the row's store (``recursive_weight``, chosen on the backtest;
    ``default_weight`` for stores not seen in training)."""

    members: dict[str, DemandModel]
    store_group: dict[str, dict[str, str]]
    """part -> store -> the group whose member predicts that part in that store."""
    recursive_weight: dict[str, float] = field(default_factory=dict)
    default_weight: float = 0.5

    @property
    def parts(self) -> list[str]:
        """Every part some member has, in the members' order."""
        return list(dict.fromkeys(k for m in self.members.values() for k in m.boosters))

    def group_of(self, stores: pl.Series, part: str) -> np.ndarray:
        """Group key of each store for ``part`` (unknown stores go to the global member, or the
        first member with that part)."""
        having = [g for g, m in self.members.items() if part in m.boosters]
        fallback = GLOBAL if GLOBAL in having else having[0]
        routing = self.store_group.get(part, {})
        s = stores.cast(pl.String)
        return s.replace_strict(routing, default=fallback).fill_null(fallback).to_numpy()

    @property
    def input_spec(self) -> ModelSpec:
        """One spec over every member's columns (builds the pyfunc input frame)."""
        return input_spec({f"{g}/{k}": s for g, m in self.members.items()
                           for k, s in m.specs.items()})  # fmt: skip

    @property
    def input_columns(self) -> list[str]:
        """Every column any member reads."""
        return self.input_spec.feature_columns

    def combine(self, parts: Mapping[str, np.ndarray], stores: pl.Series) -> np.ndarray:
        """Blend of the parts' predictions with each row's store weight."""
        if len(parts) == 1:
            return np.asarray(next(iter(parts.values())), np.float64)
        w = (
            stores.cast(pl.String)
            .replace_strict(self.recursive_weight, default=self.default_weight,
                            return_dtype=pl.Float64)
            .fill_null(self.default_weight)
            .to_numpy()
        )  # fmt: skip
        return blend(parts[DIRECT], parts[RECURSIVE], w)

    def predict_parts(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Each part's one-step predictions of rows that carry every input column."""
        stores = stores_of(frame)
        out: dict[str, np.ndarray] = {}
        for k in self.parts:
            groups = self.group_of(stores, k)
            out[k] = np.zeros(frame.height)
            for g in np.unique(groups):
                sel = groups == g
                member = self.members[str(g)]
                out[k][sel] = predict_booster(member.boosters[k], frame.filter(pl.Series(sel)),
                                              member.specs[k], member.iterations.get(k))  # fmt: skip
        return out

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """One-step blended predictions (the pyfunc's ``predict``)."""
        return self.combine(self.predict_parts(frame), stores_of(frame))

    def forecast_parts(self, rows: pl.DataFrame, history: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's horizon forecast of ``rows`` (every series x the horizon days, sorted by
        id, d), each series by the member serving that part in its store; ``history`` in the
        same series order."""
        n = history.shape[0]
        if n == 0 or rows.height % n:
            raise ValueError(f"{rows.height} rows do not cover {n} series x whole days")
        days = rows.height // n
        series_stores = stores_of(rows).gather_every(days)
        out: dict[str, np.ndarray] = {}
        for k in self.parts:
            series_group = self.group_of(series_stores, k)
            out[k] = np.zeros(rows.height)
            for g in np.unique(series_group):
                sel = series_group == g
                row_sel = np.repeat(sel, days)
                out[k][row_sel] = self.members[str(g)].forecast_parts(
                    rows.filter(pl.Series(row_sel)), history[sel], [k]
                )[k]
        return out

    def forecast(self, rows: pl.DataFrame, history: np.ndarray) -> np.ndarray:
        """Blended horizon forecast (see :meth:`forecast_parts`)."""
        return self.combine(self.forecast_parts(rows, history), stores_of(rows))

    def importance(self) -> pl.DataFrame:
        """feature, gain, split summed over every member's parts, each part weighted by its
        mean blend weight."""
        mean_w = float(np.mean(list(self.recursive_weight.values()) or [self.default_weight]))
        part_w = {DIRECT: 1.0 - mean_w, RECURSIVE: mean_w}
        frames = [
            importance_frame(b).with_columns(pl.col("gain") * part_w.get(k, 1.0),
                                             pl.col("split") * part_w.get(k, 1.0))
            for m in self.members.values() for k, b in m.boosters.items()
        ]  # fmt: skip
        return (
            pl.concat(frames)
            .group_by("feature")
            .agg(pl.col("gain").sum(), pl.col("split").sum().round(0).cast(pl.Int64))
            .sort("gain", descending=True)
        )


def fit_model(
    frame: pl.DataFrame,
    specs: Mapping[str, ModelSpec],
    params: Mapping[str, Any],
    rounds: Mapping[str, int],
    masks: Sequence[pl.Series] | Mapping[str, Sequence[pl.Series]],
    part_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> DemandModel:
    """Train every part (``rounds[part]`` trees) with ``params`` updated by the part's own
    ``part_params``: one booster per mask (of every part, or ``masks[part]``), on the rows of
    ``frame`` where it is true, the i-th with LightGBM seed ``params["seed"] + i``."""
    part_params = part_params or {}
    per_part = masks if isinstance(masks, Mapping) else dict.fromkeys(specs, masks)
    seed = int(params.get("seed", 0))
    boosters = {
        k: [fit_booster(frame, s, {**params, **part_params.get(k, {}), "seed": seed + i},
                        rounds[k], mask) for i, mask in enumerate(per_part[k])]
        for k, s in specs.items()
    }  # fmt: skip
    return DemandModel(boosters, dict(specs))
