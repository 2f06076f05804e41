"""REST prediction service for the M5 demand forecasts (``uvicorn forecasting_api.main:app``)."""

__version__ = "0.1.0"
