"""Validation of the inventory policy on the model's backtest folds: simulated cycle service level
and fill rate vs their target.

:func:`validate_on_backtest` writes the summary that becomes ``exports/inventory_validation.json``;
:func:`check_validation` reads it back and checks every target against its tolerance.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.contracts import CheckOutcome
from forecasting_assets.inventory.plan import InventoryParams
from forecasting_assets.inventory.simulation import FoldForecast, backtest_order_up_to
from forecasting_assets.m5.transform import last_history_day
from forecasting_assets.monitoring.history import history_window, id_in


def validation_days(backtest: pl.DataFrame, last_d: int, params: InventoryParams) -> int:
    """History days the validation needs: the dispersion fit before the earliest backtest fold,
    through the last history day ``last_d``."""
    protection = params.lead_time_days + params.review_days
    before = params.classification_days + params.level_window + protection
    return last_d - int(backtest["d"].min()) + 1 + before


def sample_ids(backtest: pl.DataFrame, params: InventoryParams) -> list[str]:
    """A seeded sample of ``validation_series`` of the backtest's series (all if fewer), sorted."""
    ids = backtest["id"].unique().cast(pl.String).sort()
    if ids.len() > params.validation_series:
        rng = np.random.default_rng(params.seed)
        ids = ids.gather(np.sort(rng.choice(ids.len(), params.validation_series, replace=False)))
    return ids.to_list()


def fold_forecasts(backtest: pl.DataFrame, ids: list[str], first_d: int) -> dict[int, FoldForecast]:
    """The backtest's forecasts per fold as ``(len(ids), h)`` matrices (rows follow ``ids``;
    ``NaN`` where a series has none), placed in a history window whose first day is ``first_d``."""
    order = pl.DataFrame({"id": ids, "_r": np.arange(len(ids))})
    mine = backtest.filter(id_in(backtest.schema["id"], ids))  # before the per-row string cast
    rows = mine.with_columns(pl.col("id").cast(pl.String)).join(order, on="id")
    folds = {}
    for part in rows.partition_by("fold"):
        start = int(part["d"].min())
        matrix = np.full((len(ids), int(part["d"].max()) - start + 1), np.nan)
        matrix[part["_r"].to_numpy(), part["d"].to_numpy() - start] = part["forecast"].to_numpy()
        folds[int(part["fold"][0])] = FoldForecast(start - first_d, matrix)
    return folds


def validate_policy(
    ids: list[str],
    matrix: np.ndarray,
    first_d: int,
    backtest: pl.DataFrame,
    params: InventoryParams,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The plan's policy simulated on every backtest fold, with the model's own fold forecasts.

    ``matrix`` holds the history of ``ids`` (rows in that order) from day ``first_d`` on;
    ``backtest`` is ``backtest_forecasts.parquet`` (id, fold, d, forecast, actual).
    """
    folds = fold_forecasts(backtest, ids, first_d)
    table = backtest_order_up_to(
        matrix,
        folds,
        params.validation_levels,
        lead_time_days=params.lead_time_days,
        review_days=params.review_days,
        fit_days=params.classification_days,
        level_window=params.level_window,
    )
    overall = table.filter(pl.col("fold") == 0)
    levels = [
        {
            "target": r["service_level"],
            "achieved_cycle_service_level": r["cycle_service_level"],
            "fill_rate": r["fill_rate"],
            "expected_fill_rate": r["expected_fill_rate"],
            "cycles": r["cycles"],
            "within_tolerance": abs(r["cycle_service_level"] - r["service_level"])
            <= params.validation_tolerance,
        }
        for r in overall.iter_rows(named=True)
    ]
    summary = {
        "generated_at": datetime.now(UTC).isoformat(),
        "method": (
            f"periodic review (R, S) with backorders simulated day by day on the model's "
            f"{len(folds)} backtest folds; each review's S from a negative binomial with mean = the "
            f"fold's forecast over L+R days and dispersion fitted on the "
            f"{params.classification_days} days before the fold, as in the plan"
        ),
        "series_sampled": len(ids),
        "lead_time_days": params.lead_time_days,
        "review_days": params.review_days,
        "tolerance": params.validation_tolerance,
        "levels": levels,
        "folds": table.filter(pl.col("fold") > 0).to_dicts(),
    }
    return table, summary


def validate_on_backtest(
    sales_long: pl.LazyFrame, backtest_path: Path, params: InventoryParams
) -> dict[str, Any]:
    """:func:`validate_policy` on a sample of the series of ``backtest_forecasts.parquet``, with
    their history read from ``sales_long``; a summary without levels if there is no backtest."""
    if not backtest_path.exists():
        return {"method": f"{backtest_path} does not exist: materialize demand_model first",
                "levels": []}  # fmt: skip
    backtest = pl.read_parquet(backtest_path)
    last_d = last_history_day(sales_long)
    days = validation_days(backtest, last_d, params)
    series, matrix = history_window(sales_long, days, sample_ids(backtest, params))
    first_d = last_d - days + 1
    return validate_policy(series["id"].to_list(), matrix, first_d, backtest, params)[1]


def levels_markdown(summary: dict[str, Any]) -> str:
    """The simulated levels of a validation summary as a Markdown table."""
    head = "| target CSL | achieved CSL | fill rate | expected fill rate | cycles |\n"
    return (
        head
        + "|---|---|---|---|---|\n"
        + "\n".join(
            f"| {lv['target']:.0%} | {lv['achieved_cycle_service_level']:.3f} | "
            f"{lv['fill_rate']:.3f} | {lv.get('expected_fill_rate', float('nan')):.3f} | "
            f"{lv['cycles']} |"
            for lv in summary["levels"]
        )
    )


def check_validation(path: Path) -> CheckOutcome:
    """Every target level achieved within its tolerance in the simulation written to ``path``."""
    if not path.exists():
        return CheckOutcome(False, f"{path} does not exist")
    summary = json.loads(path.read_text())
    levels = summary.get("levels") or []
    if not levels:
        return CheckOutcome(False, f"no simulated service level ({summary.get('method', '')})")
    tol = float(summary.get("tolerance", 0.03))
    off = [
        f"{lv['target']:.3f}: {lv['achieved_cycle_service_level']}"
        for lv in levels
        if lv.get("achieved_cycle_service_level") is None
        or abs(lv["achieved_cycle_service_level"] - lv["target"]) > tol
    ]
    if off:
        return CheckOutcome(
            False, f"achieved cycle service level off target by more than {tol}: {off}"
        )
    return CheckOutcome(True, "; ".join(
        f"{lv['target']:.0%} → {lv['achieved_cycle_service_level']:.3f} (fill {lv['fill_rate']:.3f})"
        for lv in levels
    ))  # fmt: skip
