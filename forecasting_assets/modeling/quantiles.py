"""Quantile levels of the probabilistic forecast, the id-free conformal quantiles, coverage.

:class:`ConformalQuantiles` (legacy, and the id-free fallback the API uses for one-off points):
bottom level: backtest pairs (point forecast, actual) are binned by the point forecast (equal-count
bins); within each bin the empirical quantiles of the residual ``actual - forecast`` are stored.
A new forecast gets ``max(forecast + residual_quantile(bin), 0)``. Residual quantiles at levels
<= 0.10 are capped at 0 and those >= 0.90 floored at 0 so that ``q100 <= point <= q900`` always
holds (the export's ``lower``/``upper``). This adapts to the strong heteroscedasticity of count
data (the spread grows with the level) and costs one ``searchsorted`` per forecast.

Aggregated levels (store, dept, ...): relative errors ``actual/forecast - 1`` of the aggregated
backtest forecasts are pooled per level; their quantiles scale the aggregated point forecast.

The model's own calibration, per series and per M5 level, is
:class:`forecasting_assets.modeling.quantile_calibration.QuantileCalibration`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

QUANTILES: tuple[float, ...] = (
    0.005, 0.025, 0.05, 0.10, 0.165, 0.25, 0.5, 0.75, 0.835, 0.90, 0.95, 0.975, 0.995,
)  # fmt: skip
"""Quantile levels of the probabilistic forecast (M5 uncertainty levels)."""

LOWER_Q = 0.10
UPPER_Q = 0.90
INTERVALS: tuple[float, ...] = (0.5, 0.67, 0.8, 0.9, 0.95, 0.99)
"""Central intervals (nominal coverage) reported in interval_coverage.parquet."""


def quantile_column(q: float) -> str:
    """Column name of a quantile level: per-mille, 3 digits (0.025 -> ``q025``, 0.5 -> ``q500``)."""
    return f"q{round(q * 1000):03d}"


QUANTILE_COLUMNS: tuple[str, ...] = tuple(quantile_column(q) for q in QUANTILES)


def _residual_quantiles(res: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    rq = np.quantile(res, quantiles) if res.size else np.zeros(len(quantiles))
    qs = np.asarray(quantiles)
    rq = np.where(qs <= LOWER_Q, np.minimum(rq, 0.0), rq)
    rq = np.where(qs >= UPPER_Q, np.maximum(rq, 0.0), rq)
    return np.maximum.accumulate(rq)


@dataclass
class ConformalQuantiles:
    """Binned residual quantiles of the bottom level, plus relative ones per aggregated level."""

    quantiles: tuple[float, ...] = QUANTILES
    edges: list[float] = field(default_factory=list)  # inner bin edges on the point forecast
    residuals: list[list[float]] = field(default_factory=list)  # (bins, Q)
    level_relative: dict[str, list[float]] = field(default_factory=dict)  # level -> (Q,)

    @classmethod
    def fit(
        cls,
        forecast: np.ndarray,
        actual: np.ndarray,
        quantiles: Sequence[float] = QUANTILES,
        n_bins: int = 40,
        level_pairs: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> ConformalQuantiles:
        """Fit from backtest point forecasts and actuals (any shape, flattened).

        ``level_pairs``: optional ``{level: (aggregated forecast, aggregated actual)}``.
        """
        f = np.asarray(forecast, np.float64).ravel()
        a = np.asarray(actual, np.float64).ravel()
        ok = np.isfinite(f) & np.isfinite(a)
        f, a = f[ok], a[ok]
        if f.size == 0:
            raise ValueError("no backtest pairs to calibrate quantiles")
        edges = np.unique(np.quantile(f, np.linspace(0, 1, n_bins + 1)[1:-1]))
        bins = np.searchsorted(edges, f, side="right")
        res = a - f
        order = np.argsort(bins, kind="stable")
        splits = np.searchsorted(bins[order], np.arange(1, edges.size + 1))
        table = [_residual_quantiles(chunk, quantiles) for chunk in np.split(res[order], splits)]
        rel: dict[str, list[float]] = {}
        for level, (lf, la) in (level_pairs or {}).items():
            lf = np.asarray(lf, np.float64).ravel()
            la = np.asarray(la, np.float64).ravel()
            keep = lf > 0
            r = la[keep] / lf[keep] - 1.0
            rel[level] = (
                _residual_quantiles(r, quantiles).tolist() if r.size else [0.0] * len(quantiles)
            )
        return cls(
            quantiles=tuple(float(q) for q in quantiles),
            edges=edges.tolist(),
            residuals=[t.tolist() for t in table],
            level_relative=rel,
        )

    def predict(self, forecast: np.ndarray) -> np.ndarray:
        """Quantile forecasts ``(*forecast.shape, Q)``, non-negative and monotone in the level."""
        f = np.asarray(forecast, np.float64)
        bins = np.searchsorted(np.asarray(self.edges), f.ravel(), side="right")
        q = f.ravel()[:, None] + np.asarray(self.residuals)[bins]
        return np.maximum(q, 0.0).reshape(*f.shape, len(self.quantiles))

    def predict_level(self, level: str, forecast: np.ndarray) -> np.ndarray:
        """Quantiles ``(*shape, Q)`` of aggregated forecasts of ``level`` (relative errors)."""
        f = np.asarray(forecast, np.float64)
        rel = np.asarray(self.level_relative[level])
        return np.maximum(f[..., None] * (1.0 + rel), 0.0)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable form (logged to MLflow as quantile_calibration.json)."""
        return {
            "method": "binned_conformal_residuals",
            "quantiles": list(self.quantiles),
            "edges": self.edges,
            "residuals": self.residuals,
            "level_relative": self.level_relative,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ConformalQuantiles:
        """Inverse of :meth:`to_dict`."""
        return cls(
            quantiles=tuple(data["quantiles"]),  # type: ignore[arg-type]
            edges=list(data["edges"]),  # type: ignore[call-overload]
            residuals=[list(r) for r in data["residuals"]],  # type: ignore[union-attr]
            level_relative={k: list(v) for k, v in dict(data.get("level_relative", {})).items()},  # type: ignore[call-overload]
        )


def coverage_rows(
    model: str,
    fold: int,
    actual: np.ndarray,
    qforecast: np.ndarray,
    quantiles: Sequence[float] = QUANTILES,
    intervals: Sequence[float] = INTERVALS,
) -> list[dict[str, object]]:
    """Rows for interval_coverage.parquet.

    ``kind="quantile"``: ``quantile`` = nominal level, ``coverage`` = share of actuals <= it.
    ``kind="interval"``: ``quantile`` = nominal central coverage (e.g. 0.8 = [q100, q900]),
    ``coverage`` = share of actuals inside it. Only intervals whose bounds are quantile levels
    are reported.
    """
    a = np.asarray(actual, np.float64)
    rows: list[dict[str, object]] = []
    cov = np.mean(a[..., None] <= qforecast, axis=tuple(range(a.ndim)))
    strict = np.mean(a[..., None] < qforecast, axis=tuple(range(a.ndim)))
    for i, q in enumerate(quantiles):
        rows.append(
            {"model": model, "fold": fold, "kind": "quantile", "quantile": float(q),
             "coverage": float(cov[i]), "coverage_strict": float(strict[i])}
        )  # fmt: skip
    qs = [round(q, 4) for q in quantiles]
    for nominal in intervals:
        lo, hi = round((1 - nominal) / 2, 4), round(1 - (1 - nominal) / 2, 4)
        if lo in qs and hi in qs:
            inside = (a >= qforecast[..., qs.index(lo)]) & (a <= qforecast[..., qs.index(hi)])
            rows.append(
                {"model": model, "fold": fold, "kind": "interval", "quantile": float(nominal),
                 "coverage": float(inside.mean()), "coverage_strict": None}
            )  # fmt: skip
    return rows
