"""Fixtures of the modeling tests: a small hierarchy with backtest folds of count data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest


@dataclass
class CountFolds:
    """Series with known per-series spread: hierarchy, true means and per-fold draws."""

    hierarchy: pl.DataFrame
    mean: np.ndarray  # (n, h) true daily means (also the point forecast)
    dispersion: np.ndarray  # (n,) variance / mean of each series
    folds: list[np.ndarray]  # actuals of each fold, (n, h)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One more fold of actuals from the same distributions."""
        return negative_binomial(rng, self.mean, self.dispersion)


def negative_binomial(
    rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """Counts with the given mean and variance = dispersion x mean (Poisson for dispersion 1)."""
    d = np.broadcast_to(
        np.asarray(dispersion, float).reshape(-1, *[1] * (mean.ndim - 1)), mean.shape
    )
    pois = d <= 1.0 + 1e-9
    r = mean / np.where(pois, 1.0, d - 1.0)
    nb = rng.negative_binomial(
        np.where(pois, 1.0, np.maximum(r, 1e-9)), np.where(pois, 0.5, 1.0 / d)
    )
    return np.where(pois, rng.poisson(mean), np.where(mean > 0, nb, 0)).astype(float)


@pytest.fixture(scope="session")
def count_folds() -> CountFolds:
    """4 stores x 2 depts x 25 items = 200 series, 5 folds of 28 days; half the series are
    Poisson, half strongly over-dispersed (variance 6 x mean), levels from 0.2 to 8 a day."""
    rng = np.random.default_rng(3)
    rows = [
        (f"{d}_{i:03d}", d, d.split("_")[0], s, s.split("_")[0])
        for s in ("CA_1", "CA_2", "TX_1", "WI_1")
        for d in ("FOODS_1", "HOBBIES_1")
        for i in range(25)
    ]
    hier = pl.DataFrame(rows, schema=["item_id", "dept_id", "cat_id", "store_id", "state_id"],
                        orient="row")  # fmt: skip
    hier = hier.select(pl.concat_str("item_id", "store_id", separator="_").alias("id"), pl.all())
    n = hier.height
    level = np.exp(rng.uniform(np.log(0.2), np.log(8.0), n))
    week = 1.0 + 0.3 * np.sin(2 * np.pi * np.arange(28) / 7)
    mean = level[:, None] * week[None, :]
    dispersion = np.where(np.arange(n) % 2 == 0, 1.0, 6.0)
    folds = [negative_binomial(rng, mean, dispersion) for _ in range(5)]
    return CountFolds(hier, mean, dispersion, folds)
