"""Validation of the inventory policy on history: simulated cycle service level vs its target.

:func:`validate_policy` writes the summary that becomes ``exports/inventory_validation.json``;
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
from forecasting_assets.inventory.simulation import backtest_order_up_to


def validation_days(params: InventoryParams) -> int:
    """History days the walk-forward validation needs."""
    protection = params.lead_time_days + params.review_days
    return (
        params.classification_days + params.level_window + params.validation_folds * 28 + protection
    )


def validate_policy(
    ids: list[str], matrix: np.ndarray, params: InventoryParams
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Walk-forward simulation of the policy on a seeded sample of series (history only).

    ``matrix`` rows follow ``ids``; its last :func:`validation_days` columns are used.
    """
    rows = np.arange(len(ids))
    if len(ids) > params.validation_series:
        rng = np.random.default_rng(params.seed)
        rows = np.sort(rng.choice(len(ids), params.validation_series, replace=False))
    table = backtest_order_up_to(
        matrix[rows, -validation_days(params) :],
        params.validation_levels,
        lead_time_days=params.lead_time_days,
        review_days=params.review_days,
        n_folds=params.validation_folds,
        fit_days=params.classification_days,
        level_window=params.level_window,
    )
    overall = table.filter(pl.col("fold") == 0)
    levels = [
        {
            "target": r["service_level"],
            "achieved_cycle_service_level": r["cycle_service_level"],
            "fill_rate": r["fill_rate"],
            "cycles": r["cycles"],
            "within_tolerance": abs(r["cycle_service_level"] - r["service_level"])
            <= params.validation_tolerance,
        }
        for r in overall.iter_rows(named=True)
    ]
    summary = {
        "generated_at": datetime.now(UTC).isoformat(),
        "method": (
            "periodic review (R, S) with backorders simulated day by day on the last "
            f"{params.validation_folds} folds of 28 history days; S from a negative binomial with "
            f"mean = {params.level_window}-day moving average x (L+R) and dispersion fitted on the "
            f"previous {params.classification_days} days"
        ),
        "series_sampled": len(rows),
        "lead_time_days": params.lead_time_days,
        "review_days": params.review_days,
        "tolerance": params.validation_tolerance,
        "levels": levels,
        "folds": table.filter(pl.col("fold") > 0).to_dicts(),
    }
    return table, summary


def levels_markdown(summary: dict[str, Any]) -> str:
    """The simulated levels of a validation summary as a Markdown table."""
    return "| target | achieved CSL | fill rate | cycles |\n|---|---|---|---|\n" + "\n".join(
        f"| {lv['target']:.0%} | {lv['achieved_cycle_service_level']:.3f} | "
        f"{lv['fill_rate']:.3f} | {lv['cycles']} |"
        for lv in summary["levels"]
    )


def check_validation(path: Path) -> CheckOutcome:
    """Every target level achieved within its tolerance in the simulation written to ``path``."""
    if not path.exists():
        return CheckOutcome(False, f"{path} does not exist")
    summary = json.loads(path.read_text())
    levels = summary.get("levels") or []
    if not levels:
        return CheckOutcome(False, "no simulated service level")
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
