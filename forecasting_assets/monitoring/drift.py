"""Population stability index (PSI) and prediction-drift measures.

PSI = Σ_bins (c − r)·ln(c / r) over the bins of the *reference* distribution (deciles by
default; tied quantiles are merged, so discrete features get one bin per distinct cut), with
missing values as a bin of their own and shares floored at ``eps``. Rules of thumb: < 0.1 stable,
0.1–0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

STATUSES = ("ok", "warn", "alert")
"""Report statuses, in increasing severity."""


def psi(
    reference: np.ndarray | pl.Series,
    current: np.ndarray | pl.Series,
    bins: int = 10,
    eps: float = 1e-4,
    min_per_bin: int = 0,
) -> float:
    """PSI of ``current`` against ``reference`` (NaN / null = its own bin).

    ``min_per_bin`` > 0 lowers the number of bins so that each holds about that many reference
    values (small samples would otherwise show drift from noise alone).
    """
    ref = _as_float(reference)
    cur = _as_float(current)
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if min_per_bin > 0:
        bins = max(1, min(bins, ref_ok.size // min_per_bin))
    if ref_ok.size:
        cuts = np.quantile(ref_ok, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        edges = np.unique(cuts)
    else:
        edges = np.array([])
    nb = edges.size + 1
    r = np.bincount(np.searchsorted(edges, ref_ok, side="left"), minlength=nb).astype(float)
    c = np.bincount(np.searchsorted(edges, cur_ok, side="left"), minlength=nb).astype(float)
    r = np.append(r, ref.size - ref_ok.size) / ref.size
    c = np.append(c, cur.size - cur_ok.size) / cur.size
    r, c = np.maximum(r, eps), np.maximum(c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def _as_float(x: np.ndarray | pl.Series) -> np.ndarray:
    if isinstance(x, pl.Series):
        return x.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    return np.asarray(x, dtype=np.float64).ravel()


def status_from_value(value: float | None, warn: float, alert: float) -> str:
    """``alert`` if value > alert, ``warn`` if value > warn, else ``ok`` (None/NaN → ok)."""
    if value is None or not np.isfinite(value):
        return "ok"
    if value > alert:
        return "alert"
    return "warn" if value > warn else "ok"


def worst_status(*statuses: str) -> str:
    """The most severe of the given statuses (``ok`` when none)."""
    return max(statuses, key=STATUSES.index, default="ok")


def psi_table(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Sequence[str],
    *,
    bins: int = 10,
    warn: float = 0.1,
    alert: float = 0.25,
) -> pl.DataFrame:
    """One row per feature: name, psi, status, reference/current mean and null share."""
    rows = []
    for name in columns:
        ref, cur = reference[name], current[name]
        value = psi(ref, cur, bins=bins)
        rows.append(
            {
                "name": name,
                "psi": value,
                "status": status_from_value(value, warn, alert),
                "reference_mean": _mean(ref),
                "current_mean": _mean(cur),
                "reference_null_share": _null_share(ref),
                "current_null_share": _null_share(cur),
            }
        )
    schema = {
        "name": pl.String,
        "psi": pl.Float64,
        "status": pl.String,
        "reference_mean": pl.Float64,
        "current_mean": pl.Float64,
        "reference_null_share": pl.Float64,
        "current_null_share": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def _mean(s: pl.Series) -> float | None:
    x = _as_float(s)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None


def _null_share(s: pl.Series) -> float:
    x = _as_float(s)
    return float(np.isnan(x).mean()) if x.size else 0.0


def feature_drift_status(
    table: pl.DataFrame, *, min_alert_features: int = 3, min_alert_share: float = 0.1
) -> str:
    """Overall feature-drift status.

    ``alert`` when at least ``min_alert_features`` features **or** at least ``min_alert_share``
    of the features (and at least one) are in alert; ``warn`` when any feature is in warn or
    alert; else ``ok``.
    """
    if table.height == 0:
        return "ok"
    n_alert = int((table["status"] == "alert").sum())
    n_warn = int((table["status"] == "warn").sum())
    if n_alert and (n_alert >= min_alert_features or n_alert / table.height >= min_alert_share):
        return "alert"
    return "warn" if n_alert + n_warn else "ok"


def prediction_drift(
    forecast: pl.DataFrame,
    reference: pl.DataFrame,
    *,
    value: str = "predicted_sales",
    reference_value: str = "value",
    bins: int = 10,
    min_per_bin: int = 20,
) -> dict[str, float | int | None]:
    """Drift of per-series mean daily predictions against a per-series reference.

    ``forecast``: id, ``value`` per day; ``reference``: id, ``reference_value`` per day
    (recent actuals or the previous forecast). Returns the PSI of the per-series daily means
    (series in both; bins of at least ``min_per_bin`` series), the relative change of the total daily mean and the median absolute
    relative change per series (against reference means > 0).
    """
    cur = forecast.group_by("id").agg(pl.col(value).cast(pl.Float64).mean().alias("cur"))
    ref = reference.group_by("id").agg(pl.col(reference_value).cast(pl.Float64).mean().alias("ref"))
    both = (
        cur.with_columns(pl.col("id").cast(pl.String))
        .join(ref.with_columns(pl.col("id").cast(pl.String)), on="id", how="inner")
        .filter(pl.col("cur").is_finite() & pl.col("ref").is_finite())
    )
    if both.height == 0:
        return {"series": 0, "psi": None, "mean_change": None, "median_abs_change": None}
    c, r = both["cur"].to_numpy(), both["ref"].to_numpy()
    total_ref = float(np.nansum(r))
    pos = r > 0
    return {
        "series": both.height,
        "psi": psi(r, c, bins=bins, min_per_bin=min_per_bin),
        "mean_change": float(np.nansum(c) / total_ref - 1.0) if total_ref > 0 else None,
        "median_abs_change": float(np.nanmedian(np.abs(c[pos] / r[pos] - 1.0)))
        if pos.any()
        else None,
        "current_mean": float(np.nanmean(c)),
        "reference_mean": float(np.nanmean(r)),
    }
