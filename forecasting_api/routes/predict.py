"""Prediction endpoints: one item x store x day, or a batch.

Answers are validated by the response models (one ``TypeAdapter`` pass in Rust, then
serialized from the validated objects), so they always match the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Response
from pydantic import TypeAdapter

from forecasting_api.deps import MetricsDep, SettingsDep, SnapshotDep, get_client
from forecasting_api.observability import Metrics
from forecasting_api.routes.responses import AUTH_ERRORS, err, error
from forecasting_api.schemas import BatchPredictionRequest, PredictionRequest, PredictionResponse
from forecasting_api.services.errors import PredictionError
from forecasting_api.services.predictor import QueryLike, complete, plan
from forecasting_api.services.snapshot import Snapshot

PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: err("Unknown item, store or series"),
    408: err("Request body not received in time"),
    413: err("Request body too large (FORECASTING_API_MAX_BODY_BYTES)"),
    422: err(
        "Malformed body, wrong types, more items than FORECASTING_API_MAX_BATCH, or a date "
        "outside the data"
    ),
    503: err("Forecasts / model not loaded yet, or the request timed out"),
}
PLAN_INLINE_MAX = 2000
"""Batches up to this size are planned on the event loop (a few ms); larger in a thread."""

ONE = TypeAdapter(PredictionResponse)
MANY = TypeAdapter(list[PredictionResponse])

router = APIRouter(tags=["predict"], dependencies=[Depends(get_client)], responses=PREDICT_ERRORS)


async def _answer(
    snap: Snapshot, metrics: Metrics, queries: Sequence[QueryLike]
) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    if len(queries) <= PLAN_INLINE_MAX:
        p = plan(snap, queries, now)
    else:
        p = await anyio.to_thread.run_sync(plan, snap, queries, now)
    if p.fallback:  # model work never runs on the event loop
        answers = await anyio.to_thread.run_sync(complete, snap, p)
    else:
        answers = complete(snap, p)
    for source, n in Counter(a["source"] for a in answers).items():
        metrics.predictions.labels(source).inc(n)
    return answers


@router.post(
    "/predict", response_model=PredictionResponse, summary="Forecast one item x store x day"
)
async def predict_one(body: PredictionRequest, snap: SnapshotDep, metrics: MetricsDep) -> Response:
    try:
        answers = await _answer(snap, metrics, [body])
    except PredictionError as exc:
        return error(exc.status, exc.message)
    return Response(ONE.dump_json(ONE.validate_python(answers[0])), media_type="application/json")


@router.post(
    "/predict/batch",
    response_model=list[PredictionResponse],
    summary="Forecast up to FORECASTING_API_MAX_BATCH items at once",
)
async def predict_batch(
    body: BatchPredictionRequest,
    snap: SnapshotDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> Response:
    if len(body.items) > settings.max_batch:
        return error(  # 422 as for any schema violation (maxItems in the OpenAPI schema)
            422,
            f"items: too many items: {len(body.items)} > {settings.max_batch} "
            "(FORECASTING_API_MAX_BATCH)",
        )
    try:
        answers = await _answer(snap, metrics, body.items)
    except PredictionError as exc:
        return error(exc.status, exc.message)
    return Response(MANY.dump_json(MANY.validate_python(answers)), media_type="application/json")
