"""Answering queries: from the forecasts when possible (no I/O), else with the model.

:func:`plan` resolves every query and reads the forecast rows with vectorized indexing (cheap,
fine on the event loop); :func:`complete` computes the rest with the champion from the stored
features (blocking: run it in a worker thread).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from forecasting_api.services.errors import PredictionError
from forecasting_api.services.forecast_index import ForecastIndex, epoch_day
from forecasting_api.services.snapshot import Resolved, Snapshot
from forecasting_assets.modeling.quantiles import LOWER_Q, UPPER_Q

logger = logging.getLogger(__name__)

INTERVAL_LEVEL = round(UPPER_Q - LOWER_Q, 6)
"""Nominal coverage of ``prediction_interval`` (the pipeline's ``lower``/``upper`` quantiles)."""


class QueryLike(Protocol):
    """What :func:`plan` reads from a request item (a :class:`Query` or a request body)."""

    @property
    def item_id(self) -> str: ...

    @property
    def store_id(self) -> str | None: ...

    @property
    def date(self) -> dt.date: ...


@dataclass(frozen=True, eq=False)
class Query:
    """One validated prediction request."""

    item_id: str
    store_id: str | None
    date: dt.date


def poisson_interval(
    mu: np.ndarray, level: float = INTERVAL_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of a Poisson with mean ``mu`` (model answers of a model
    without a calibration)."""
    a = (1.0 - level) / 2.0
    mu = np.asarray(mu, dtype=np.float64)
    lo = np.where(mu > 0, _poisson_ppf(a, mu), 0.0)
    hi = np.where(mu > 0, _poisson_ppf(1.0 - a, mu), 0.0)
    return np.minimum(lo, mu), np.maximum(hi, mu)


def _poisson_ppf(q: float, mu: np.ndarray) -> np.ndarray:
    """``scipy.stats.poisson.ppf(q, mu)`` from its special functions (20x less overhead)."""
    from scipy import special

    mu = np.maximum(mu, 1e-12)
    k = np.ceil(special.pdtrik(q, mu))
    below = np.maximum(k - 1.0, 0.0)
    return np.where(special.pdtr(below, mu) >= q, below, k)


@dataclass(eq=False)
class Plan:
    """Answers found in the forecasts, plus the queries the model must compute."""

    out: list[dict[str, Any] | None]
    fallback: list[tuple[int, Resolved, dt.date]]
    timestamp: str


def plan(snapshot: Snapshot, queries: Sequence[QueryLike], now: dt.datetime) -> Plan:
    """Resolve every query; answer from the forecasts when possible (fast, no I/O).

    Ids are resolved one by one (dict lookups); the forecast rows of all queries are then
    located and read with vectorized numpy indexing. Raises :class:`PredictionError` for
    the first bad item (unknown ids, dates outside the data).
    """
    ts = now.isoformat().replace("+00:00", "Z")
    resolved, errors = _resolve_all(snapshot, queries)
    out: list[dict[str, Any] | None] = [None] * len(queries)
    if snapshot.forecasts is not None:
        _answer_from_forecasts(snapshot.forecasts, queries, resolved, out, ts)
    fallback = _fallback_or_errors(snapshot, queries, resolved, out, errors)
    if errors:
        errors.sort(key=lambda e: e[0])
        _raise_collected(errors, len(queries))
    return Plan(out, fallback, ts)


def _resolve_all(
    snapshot: Snapshot, queries: Sequence[QueryLike]
) -> tuple[list[Resolved | None], list[tuple[int, PredictionError]]]:
    resolved: list[Resolved | None] = []
    errors: list[tuple[int, PredictionError]] = []
    for k, q in enumerate(queries):
        try:
            resolved.append(snapshot.resolve(q.item_id, q.store_id))
        except PredictionError as exc:
            resolved.append(None)
            errors.append((k, exc))
    return resolved, errors


def _answer_from_forecasts(
    fc: ForecastIndex,
    queries: Sequence[QueryLike],
    resolved: Sequence[Resolved | None],
    out: list[dict[str, Any] | None],
    ts: str,
) -> None:
    """Fill ``out`` for the queries whose (series, day) is in the forecasts."""
    ks: list[int] = []
    poss: list[int] = []
    days: list[int] = []
    for k, r in enumerate(resolved):
        if r is not None and r.pos >= 0:
            ks.append(k)
            poss.append(r.pos)
            days.append(epoch_day(queries[k].date))
    if not ks:
        return
    if len(ks) <= 8:  # scalar lookups beat numpy call overhead for a few items
        rows = np.array(
            [-1 if (r := fc.row(p, d)) is None else r for p, d in zip(poss, days, strict=True)],
            dtype=np.int64,
        )
    else:
        rows = fc.rows(np.asarray(poss, dtype=np.int64), np.asarray(days, dtype=np.int64))
    hit = rows >= 0
    sel = rows[hit]
    pred = fc.pred[sel].tolist()
    lower = fc.lower[sel].tolist()
    upper = fc.upper[sel].tolist()
    mv = [fc.model_versions[c] for c in fc.version_code[sel].tolist()]
    for j, k in enumerate(np.asarray(ks)[hit].tolist()):
        r = resolved[k]
        assert r is not None
        out[k] = {
            "item_id": r.item_id,
            "store_id": r.store_id,
            "date": queries[k].date.isoformat(),
            "predicted_sales": pred[j],
            "prediction_interval": {"lower": lower[j], "upper": upper[j]},
            "model_version": mv[j],
            "source": "batch_forecast",
            "timestamp": ts,
        }


def _fallback_or_errors(
    snapshot: Snapshot,
    queries: Sequence[QueryLike],
    resolved: Sequence[Resolved | None],
    out: list[dict[str, Any] | None],
    errors: list[tuple[int, PredictionError]],
) -> list[tuple[int, Resolved, dt.date]]:
    """Queries not answered by the forecasts: for the model, or 422 outside the data."""
    fallback: list[tuple[int, Resolved, dt.date]] = []
    start, end = snapshot.data_start, snapshot.data_end
    for k, q in enumerate(queries):
        r = resolved[k]
        if out[k] is not None or r is None:
            continue
        if start is not None and q.date < start:
            errors.append(
                (k, PredictionError(422, f"date {q.date} is before the data starts ({start})"))
            )
        elif end is not None and q.date > end:
            errors.append(
                (
                    k,
                    PredictionError(
                        422, f"date {q.date} is beyond the forecast horizon (last day {end})"
                    ),
                )
            )
        else:
            fallback.append((k, r, q.date))
    return fallback


def complete(snapshot: Snapshot, p: Plan) -> list[dict[str, Any]]:
    """Compute the fallback queries with the champion (blocking I/O + model call)."""
    if p.fallback:
        _predict_with_model(snapshot, p.fallback, p.out, p.timestamp)
    return [o for o in p.out if o is not None]


def predict(
    snapshot: Snapshot, queries: Sequence[QueryLike], now: dt.datetime
) -> list[dict[str, Any]]:
    """Answer every query or raise :class:`PredictionError` (first failing item, indexed).

    Dates in the forecasts come from the batch export (``source="batch_forecast"``); other
    dates inside the features table are computed with the champion (``source="model"``).
    """
    return complete(snapshot, plan(snapshot, queries, now))


def _raise_collected(errors: list[tuple[int, PredictionError]], n: int) -> None:
    k, first = errors[0]
    if n == 1:
        raise first
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise PredictionError(first.status, f"items[{k}]: {first.message}{more}")


def _predict_with_model(
    snapshot: Snapshot,
    fallback: list[tuple[int, Resolved, dt.date]],
    out: list[dict[str, Any] | None],
    ts: str,
) -> None:
    model, feats = snapshot.model, snapshot.features
    if model is None or feats is None:
        what = "model" if model is None else "features table"
        k, r, d = fallback[0]
        raise PredictionError(
            503,
            f"{r.series_id} on {d} is not in the batch forecasts and the {what} needed to "
            f"compute it is not loaded",
        )
    pairs = [(r.series_id, d) for _, r, d in fallback]
    try:
        rows = feats.fetch(pairs, model.feature_columns)
    except Exception as exc:  # file replaced/corrupt under us
        logger.exception("feature lookup failed")
        raise PredictionError(503, f"feature lookup failed ({type(exc).__name__})") from exc
    pos = {
        (sid, d): i
        for i, (sid, d) in enumerate(zip(rows["id"].to_list(), rows["date"].to_list(), strict=True))
    }
    missing = [(k, r, d) for k, r, d in fallback if (r.series_id, d) not in pos]
    if missing:
        errs = [
            (k, PredictionError(404, f"no feature row for {r.series_id} on {d}"))
            for k, r, d in missing
        ]
        _raise_collected(errs, len(out))
    try:
        pts = model.predict(rows)
    except PredictionError:
        raise
    except Exception as exc:
        logger.exception("model prediction failed")
        raise PredictionError(
            503, f"model v{model.version} failed to predict ({type(exc).__name__})"
        ) from exc
    interval = model.interval(pts, rows["id"].to_list())
    lo, hi = interval if interval is not None else poisson_interval(pts)
    for k, r, d in fallback:
        i = pos[(r.series_id, d)]
        out[k] = {
            "item_id": r.item_id,
            "store_id": r.store_id,
            "date": d.isoformat(),
            "predicted_sales": float(pts[i]),
            "prediction_interval": {"lower": float(lo[i]), "upper": float(hi[i])},
            "model_version": model.version,
            "source": "model",
            "timestamp": ts,
        }
