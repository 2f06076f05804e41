"""Model endpoints: the serving champion's facts and feature importance."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from forecasting_api.deps import SnapshotDep, get_client
from forecasting_api.routes.responses import AUTH_ERRORS, err, error
from forecasting_api.schemas import FeatureImportance, FeatureImportanceResponse, ModelInfoResponse
from forecasting_assets.contracts import MODEL_NAME

router = APIRouter(prefix="/model", tags=["model"], dependencies=[Depends(get_client)])

WINDOW_PARAMS = (
    "train_start_d", "train_end_d", "horizon", "train_start", "train_end",
    "train_start_date", "train_end_date",
)  # fmt: skip


@router.get(
    "/info",
    response_model=ModelInfoResponse,
    summary="Champion model: version, training window, metrics, features",
    responses={**AUTH_ERRORS, 503: err("No model loaded")},
)
async def model_info(snap: SnapshotDep) -> Response | ModelInfoResponse:
    m = snap.model
    if m is None:
        return error(503, "no champion model is loaded yet")
    params = dict(m.info.get("params") or {})
    return ModelInfoResponse(
        name=m.info.get("name", MODEL_NAME),
        version=m.version,
        run_id=m.run_id,
        registered_at=m.info.get("registered_at"),
        loaded_at=m.loaded_at,
        training_window={k: params[k] for k in WINDOW_PARAMS if k in params},
        metrics={k: float(v) for k, v in (m.info.get("metrics") or {}).items()},
        params={k: v for k, v in params.items() if k != "feature_columns"},
        tags={k: str(v) for k, v in (m.info.get("tags") or {}).items()},
        feature_columns=list(m.feature_columns),
        smoke_test=m.smoke_test,
    )


@router.get(
    "/features/importance",
    response_model=FeatureImportanceResponse,
    summary="Feature importance of the serving model",
    responses={**AUTH_ERRORS, 404: err("No importance available"), 503: err("No model loaded")},
)
async def importance(snap: SnapshotDep) -> Response | FeatureImportanceResponse:
    m = snap.model
    if m is None:
        return error(503, "no champion model is loaded yet")
    if not m.importance:
        return error(404, f"no feature importance recorded for model v{m.version}")
    total = sum(v["gain"] for v in m.importance.values()) or 1.0
    rows = sorted(m.importance.items(), key=lambda kv: -kv[1]["gain"])
    return FeatureImportanceResponse(
        model_version=m.version,
        source=m.importance_source or "model",  # type: ignore[arg-type]
        importances=[
            FeatureImportance(
                feature=f, gain=v["gain"], split=v["split"], gain_share=v["gain"] / total
            )
            for f, v in rows
        ],
    )
