"""Uncertainty benchmark: M5 WSPL (12 levels, nine quantiles) and 80 % coverage per backtest fold.

Builds the panel as the pipeline does (raw files -> sales_long -> ``build_panel``) and, on every
fold, calibrates the quantiles on the *other* folds' point forecasts and actuals (leave one fold
out, as the pipeline's coverage report does), then scores on the fold:

* ``calibrated``  - :class:`QuantileCalibration` (scaled conformal residuals per level, series
  scale shrunk to its demand class);
* ``legacy``      - :class:`ConformalQuantiles` (residuals pooled by point-forecast bin; upper
  levels by relative errors of each level);
* ``snaive_emp``  - seasonal naive + empirical quantiles of its in-sample errors (M5 benchmark);
* ``naive_spread``- empirical quantiles of each series' last 28 days, flat.

Point forecasts: LightGBM fold forecasts if ``--forecasts`` gives them (an ``.npz`` with one
``(n_series, 28)`` array per fold origin, keys ``origin_<d>``, rows in panel order), else a cheap
stand-in, printed in the header: ``ma28`` (the 28-day moving average) or ``ma28_weekday`` (the
same times the weekday profile of the series' store x department over the last 8 weeks).

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_uncertainty.py --raw-dir ../shared/m5
    ... --point ma28 --ets-sample 200     # also time AutoETS / Theta on 200 series per fold

Folds: the pipeline's (``FoldPlan``: the four most recent 28-day windows plus the windows 364
and 728 days before the forecast window), or ``--origins``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def stand_in(history: np.ndarray, codes: np.ndarray, kind: str, horizon: int = 28) -> np.ndarray:
    """Cheap point forecasts ``(n, horizon)`` from the history up to the origin."""
    ma = np.repeat(history[:, -28:].mean(axis=1, keepdims=True), horizon, axis=1)
    if kind == "ma28":
        return ma
    groups = np.zeros((codes.max() + 1, 56))
    np.add.at(groups, codes, history[:, -56:])
    week = groups.reshape(-1, 8, 7).sum(axis=1)
    mean = week.mean(axis=1, keepdims=True)
    profile = np.where(mean > 0, week / np.where(mean > 0, mean, 1.0), 1.0)
    # column j of the last 56 days has weekday j % 7; horizon day i follows the last day
    return ma * profile[codes][:, np.arange(horizon) % 7]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--raw-dir", default="../shared/m5")
    ap.add_argument("--origins", type=int, nargs="*", default=None)
    ap.add_argument("--point", choices=("ma28", "ma28_weekday"), default="ma28_weekday")
    ap.add_argument("--forecasts", type=Path, default=None, help="npz of LightGBM fold forecasts")
    ap.add_argument("--ets-sample", type=int, default=0, help="time AutoETS/Theta on N series")
    ap.add_argument("--ets-only", action="store_true", help="only the statsforecast timing")
    args = ap.parse_args()

    import polars as pl

    from forecasting_assets.contracts import HORIZON
    from forecasting_assets.m5.readers import find_m5_files, read_calendar, read_prices, read_sales
    from forecasting_assets.m5.transform import build_sales_long, calendar_with_day_numbers
    from forecasting_assets.modeling import baselines
    from forecasting_assets.modeling.backtest import Fold, FoldPlan, build_panel
    from forecasting_assets.modeling.metrics import M5_QUANTILES, level_codes
    from forecasting_assets.modeling.quantile_calibration import (
        QuantileCalibration,
        level_series,
    )
    from forecasting_assets.modeling.quantiles import (
        LOWER_Q,
        QUANTILES,
        UPPER_Q,
        ConformalQuantiles,
    )

    t0 = time.perf_counter()
    files = find_m5_files(Path(args.raw_dir))
    cal = calendar_with_day_numbers(read_calendar(files["calendar"]))  # type: ignore[arg-type]
    sales_long = build_sales_long(
        cal,
        read_sales(files["sales"]),
        read_prices(files["prices"]),
        horizon=HORIZON,  # type: ignore[arg-type]
    )
    panel = build_panel(sales_long)
    del sales_long
    if args.origins:
        folds = [
            Fold(k=i + 1, origin=o, horizon=HORIZON) for i, o in enumerate(sorted(args.origins))
        ]
    else:
        folds = FoldPlan(horizon=HORIZON).folds(panel.last_day, panel.first_day)
    t_panel = time.perf_counter() - t0

    if args.ets_only:
        time_statistical_baselines(panel, folds, args.ets_sample or 100)
        return
    codes, _ = level_codes(panel.hierarchy, ("store_id", "dept_id"))
    if args.forecasts is not None:
        stored = np.load(args.forecasts)
        point = {f.k: np.asarray(stored[f"origin_{f.origin}"], np.float64) for f in folds}
        source = f"LightGBM fold forecasts from {args.forecasts}"
    else:
        point = {f.k: stand_in(panel.history(f.origin), codes, args.point) for f in folds}
        source = f"stand-in point forecasts '{args.point}' (no LightGBM fold forecasts given)"
    actual = {f.k: panel.actuals(f) for f in folds}
    qs = list(QUANTILES)
    m5_idx = [qs.index(q) for q in M5_QUANTILES]
    lo_i, hi_i = qs.index(LOWER_Q), qs.index(UPPER_Q)
    series = level_series(panel.hierarchy)

    print(f"## Uncertainty benchmark ({args.raw_dir}, {panel.hierarchy.height} series, "
          f"d_{panel.first_day}..d_{panel.last_day}); load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"Point forecasts: {source}")
    print("Folds: " + ", ".join(f"{f.k}: d_{f.start}..d_{f.end}" for f in folds))
    print("Quantiles of each fold calibrated on the other folds (leave one fold out).\n")

    rows: list[dict[str, object]] = []
    t_fit = t_pred = 0.0
    for fold in folds:
        ev = panel.evaluator(fold)
        hist = panel.history(fold.origin)
        others = [f for f in folds if f.k != fold.k]
        t = time.perf_counter()
        calib = QuantileCalibration.fit([point[f.k] for f in others],
                                        [actual[f.k] for f in others], panel.hierarchy)  # fmt: skip
        legacy = ConformalQuantiles.fit(
            np.concatenate([point[f.k].ravel() for f in others]),
            np.concatenate([actual[f.k].ravel() for f in others]),
            level_pairs={
                name: (
                    np.concatenate([np.ravel(agg @ point[f.k]) for f in others]),
                    np.concatenate([np.ravel(agg @ actual[f.k]) for f in others]),
                )
                for name, (agg, _) in series.items()
            },
        )
        t_fit += time.perf_counter() - t
        t = time.perf_counter()
        model_q = calib.level_forecasts(point[fold.k], panel.hierarchy)
        t_pred += time.perf_counter() - t
        legacy_q = {
            name: legacy.predict(point[fold.k])
            if name == "item_store"
            else legacy.predict_level(name, np.asarray(agg @ point[fold.k]))
            for name, (agg, _) in series.items()
        }
        candidates = {
            "calibrated": {k: v[..., m5_idx] for k, v in model_q.items()},
            "legacy": {k: v[..., m5_idx] for k, v in legacy_q.items()},
            "snaive_emp": baselines.quantiles_by_level(
                ev, hist, baselines.seasonal_naive_quantiles, fold.horizon
            ),
            "naive_spread": baselines.quantiles_by_level(
                ev, hist, baselines.naive_spread_quantiles, fold.horizon
            ),
        }
        a = actual[fold.k]
        wr = ev.score(a, point[fold.k])["all"]
        wr_sn = ev.score(a, baselines.seasonal_naive(hist, fold.horizon))["all"]
        intervals = {"calibrated": model_q, "legacy": legacy_q}
        for name, qf in candidates.items():
            row: dict[str, object] = {"method": name, "fold": fold.k}
            row.update(ev.wspl_levels(a, qf, M5_QUANTILES))
            if name in intervals:
                q = intervals[name]
                inside = {
                    lv: np.mean((ev.levels[lv].aggregate(a) >= q[lv][..., lo_i])
                                & (ev.levels[lv].aggregate(a) <= q[lv][..., hi_i]))
                    for lv in q
                }  # fmt: skip
                row.update(cov80=float(inside["item_store"]),
                           cov80_levels=float(np.mean(list(inside.values()))),
                           point_wrmsse_ratio=wr / wr_sn)  # fmt: skip
            rows.append(row)
        print(f"fold {fold.k} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    res = pl.DataFrame(rows)
    sn = res.filter(pl.col("method") == "snaive_emp").select("fold", pl.col("all").alias("sn"))
    res = res.join(sn, on="fold").with_columns((pl.col("all") / pl.col("sn")).alias("ratio_sn"))
    with pl.Config(tbl_rows=60, tbl_cols=30, float_precision=4, tbl_formatting="MARKDOWN",
                   tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):  # fmt: skip
        print("\nWSPL (all = mean of the 12 levels) per fold and method; ratio_sn = / snaive_emp")
        print(res.pivot(on="method", index="fold", values="all"))
        print(res.pivot(on="method", index="fold", values="ratio_sn"))
        print("\nMean over folds:")
        summary = (
            res.group_by("method")
            .agg(
                pl.col("all").mean().alias("wspl"),
                pl.col("ratio_sn").mean().alias("ratio_sn_mean"),
                pl.col("ratio_sn").min().alias("ratio_sn_min"),
                pl.col("ratio_sn").max().alias("ratio_sn_max"),
            )
            .sort("wspl")
        )
        print(summary)
        print("\nPer level, mean over folds:")
        levels = [c for c in res.columns if c in series]
        means = res.group_by("method").agg(pl.col(levels).mean()).sort("method")
        print(means.unpivot(index="method", variable_name="level").pivot(
            on="method", index="level", values="value"))  # fmt: skip
        print("\n80 % interval coverage [q100, q900] (bottom level; mean over the 12 levels):")
        print(res.filter(pl.col("cov80").is_not_null()).select(
            "method", "fold", "cov80", "cov80_levels", "point_wrmsse_ratio").sort("method", "fold"))  # fmt: skip
    print(f"\npanel {t_panel:.1f} s; calibration fit {t_fit / len(folds):.2f} s/fold; "
          f"12-level quantiles {t_pred / len(folds):.2f} s/fold")  # fmt: skip

    if args.ets_sample:
        time_statistical_baselines(panel, folds, args.ets_sample)


def time_statistical_baselines(panel: object, folds: list, sample: int) -> None:
    """Time the statsforecast baselines on ``sample`` random series per fold; their bottom-level
    weighted RMSSE on the sample relative to seasonal naive's (not the 12-level WRMSSE)."""
    from functools import partial

    from forecasting_assets.modeling import baselines, metrics

    rng = np.random.default_rng(0)
    n = panel.hierarchy.height  # type: ignore[attr-defined]
    pick = np.sort(rng.choice(n, sample, replace=False))
    models = {
        "auto_ets (ZZZ)": partial(baselines.auto_ets, model="ZZZ"),
        "auto_ets (ZNZ)": partial(baselines.auto_ets, model="ZNZ"),
        "theta": baselines.theta,
    }
    print(f"\nstatsforecast baselines on {sample} random series, last {baselines.STAT_WINDOW} "
          f"days, n_jobs=2; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, fn in models.items():
        secs, ratios = [], []
        for fold in folds:
            hist = panel.history(fold.origin)[pick]  # type: ignore[attr-defined]
            act = panel.actuals(fold)[pick]  # type: ignore[attr-defined]
            t = time.perf_counter()
            pred = fn(hist, fold.horizon)
            secs.append(time.perf_counter() - t)
            scale = metrics.guarded_scale(hist)
            w = panel.dollar_sales(fold.origin)[pick]  # type: ignore[attr-defined]
            r = metrics.rmsse(act, pred, scale)
            r_sn = metrics.rmsse(act, baselines.seasonal_naive(hist, fold.horizon), scale)
            ratios.append(float(np.sum(w * r) / np.sum(w * r_sn)))
        med = float(np.median(secs))
        print(f"{name}: median {med:.1f} s/fold (~{med * n / sample / 60:.1f} min/fold for {n} "
              f"series); bottom WRMSSE on the sample / seasonal naive: mean "
              f"{np.mean(ratios):.3f} (folds {', '.join(f'{x:.3f}' for x in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
