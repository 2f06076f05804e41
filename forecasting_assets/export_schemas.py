"""pandera (polars) schemas of the user-facing exports, checked before every write.

``validate_export(FORECASTS_FILE, frame)`` (or any name in :data:`EXPORT_SCHEMAS`) returns the
frame unchanged when it matches its schema and raises :class:`ExportSchemaError`, naming the file,
the columns, the checks and the first failing rows, when it does not. Extra columns are allowed
(optional quantile columns, hierarchy ids); every listed column must be present.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from forecasting_assets.contracts import (
    BACKTEST_METRICS_FILE,
    FORECASTS_FILE,
    INVENTORY_PLAN_FILE,
)
from forecasting_assets.inventory.demand import DEMAND_CLASSES


def _non_negative_or_nan(data: pa.PolarsData) -> pl.LazyFrame:
    """Values >= 0; NaN (a metric without a defined scale) passes."""
    col = pl.col(data.key)
    return data.lazyframe.select(col.is_nan() | (col >= 0))


class ForecastsSchema(pa.DataFrameModel):
    """``forecasts.parquet``: one row per series × horizon day."""

    id: str = pa.Field(nullable=False)
    item_id: str = pa.Field(nullable=False)
    store_id: str = pa.Field(nullable=False)
    date: pl.Date = pa.Field(nullable=False)
    predicted_sales: float = pa.Field(ge=0, nullable=False)
    lower: float = pa.Field(ge=0, nullable=False)
    upper: float = pa.Field(ge=0, nullable=False)
    quantiles: float | None = pa.Field(alias=r"^q\d{3}$", regex=True, ge=0)
    model_version: str = pa.Field(nullable=False)

    class Config:
        unique = ["id", "date"]  # noqa: RUF012


class InventoryPlanSchema(pa.DataFrameModel):
    """``inventory_plan.parquet``: one row per series."""

    id: str = pa.Field(unique=True, nullable=False)
    item_id: str
    store_id: str
    demand_class: str = pa.Field(isin=list(DEMAND_CLASSES))
    service_level: float = pa.Field(gt=0, lt=1)
    lead_time_days: pl.Int32 = pa.Field(ge=0)
    review_days: pl.Int32 = pa.Field(gt=0)
    mean_daily_demand: float = pa.Field(ge=0)
    expected_demand_lt_review: float = pa.Field(ge=0)
    safety_stock: float
    reorder_point: float = pa.Field(ge=0)
    order_up_to: float = pa.Field(ge=0)
    eoq: float = pa.Field(ge=0)
    expected_holding_cost: float = pa.Field(ge=0)
    expected_stockout_cost: float = pa.Field(ge=0)
    unit_price: float = pa.Field(ge=0)

    class Config:
        coerce = False

    @pa.dataframe_check
    def order_up_to_covers_reorder_point(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """S >= reorder point."""
        return data.lazyframe.select(pl.col("order_up_to") >= pl.col("reorder_point"))


class BacktestMetricsSchema(pa.DataFrameModel):
    """``backtest_metrics.parquet``: one row per model × fold × level."""

    model: str = pa.Field(nullable=False)
    fold: pl.Int32 = pa.Field(ge=0, nullable=False)
    level: str = pa.Field(nullable=False)
    wrmsse: float = pa.Field(nullable=True)
    mae: float = pa.Field(nullable=True)
    rmse: float = pa.Field(nullable=True)
    bias: float = pa.Field(nullable=True)

    class Config:
        unique = ["model", "fold", "level"]  # noqa: RUF012

    @pa.check("wrmsse", "mae", "rmse")
    def non_negative(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Errors are >= 0 (NaN where a level has no defined scale)."""
        return _non_negative_or_nan(data)


EXPORT_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    FORECASTS_FILE: ForecastsSchema,
    INVENTORY_PLAN_FILE: InventoryPlanSchema,
    BACKTEST_METRICS_FILE: BacktestMetricsSchema,
}


class ExportSchemaError(ValueError):
    """An export frame does not match its schema (the message names file, columns, rows)."""


def validate_export(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` if it matches the schema of the export ``name`` (e.g. ``forecasts.parquet``)."""
    schema = EXPORT_SCHEMAS[name]
    try:
        return schema.validate(frame, lazy=True)
    except (pa.errors.SchemaErrors, pa.errors.SchemaError) as err:
        raise ExportSchemaError(
            f"{name} does not match {schema.__name__}:\n{_describe(err)}"
        ) from err


def _describe(err: pa.errors.SchemaErrors | pa.errors.SchemaError, rows: int = 10) -> str:
    cases = getattr(err, "failure_cases", None)
    if not isinstance(cases, pl.DataFrame) or cases.is_empty():
        return str(err)
    lines = []
    for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
        values = group["failure_case"].head(rows).to_list()
        index = group["index"].head(rows).to_list() if "index" in group.columns else []
        lines.append(f"- column {column!r}, check {check}: {group.height} failing, rows {index} "
                     f"values {values}")  # fmt: skip
    return "\n".join(lines)
