"""HTTP endpoints (ARCHITECTURE §6), one router per concern."""

from fastapi import APIRouter

from forecasting_api.routes import model, predict, service

ROUTERS: tuple[APIRouter, ...] = (service.router, model.router, predict.router)
"""Included by the app one by one (not nested in a parent router: one match level less)."""
