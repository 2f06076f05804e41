"""HTTP endpoints (ARCHITECTURE §6), one router per concern."""

from fastapi import APIRouter

from forecasting_api.routes import model, predict, service

api_router = APIRouter()
api_router.include_router(service.router)
api_router.include_router(model.router)
api_router.include_router(predict.router)
