"""Backtest folds (boundaries, no leakage), the panel, and the conformal quantiles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting_assets.modeling import boosters, family, spec, train
from forecasting_assets.modeling.backtest import (
    Fold,
    FoldPlan,
    backtest_baselines,
    build_panel,
    fold_definition,
    headline,
    make_folds,
)
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.quantiles import (
    QUANTILE_COLUMNS,
    QUANTILES,
    ConformalQuantiles,
    coverage_rows,
    quantile_column,
)
from forecasting_assets.modeling.recent import RECENT_COLUMNS, with_recent_features
from forecasting_assets.modeling.scoring import baseline_metrics_for
from forecasting_assets.modeling.selection import FoldScorer, choose_blend, out_of_fold_forecasts


def _sales_long(
    n_series: int = 6, n_days: int = 120, horizon: int = 28, seed: int = 0
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"FOODS_1_{i:03d}_CA_1" for i in range(n_series)]
    total = n_days + horizon
    rows = []
    for i, sid in enumerate(ids):
        sales = rng.poisson(1 + i, total).astype(float)
        sales[: i * 5] = 0
        rows.append(
            pl.DataFrame(
                {
                    "id": sid,
                    "item_id": sid[:11],
                    "dept_id": "FOODS_1",
                    "cat_id": "FOODS",
                    "store_id": "CA_1",
                    "state_id": "CA",
                    "d": np.arange(1, total + 1),
                    "sell_price": np.full(total, 2.0),
                    "sales": sales,
                    "is_launched": np.arange(total) >= i * 5,
                    "x": rng.normal(size=total),
                }
            )
        )
    df = pl.concat(rows)
    enum = pl.Enum(ids)
    return df.with_columns(
        pl.col("id").cast(enum),
        pl.col("item_id").cast(pl.Enum(sorted({s[:11] for s in ids}))),
        pl.col("d").cast(pl.Int16),
        pl.col("sell_price").cast(pl.Float32),
        pl.when(pl.col("d") <= n_days).then(pl.col("sales")).cast(pl.Int32).alias("sales"),
    )


def test_folds_end_at_last_history_day() -> None:
    folds = make_folds(1941, n_folds=3, horizon=28)
    assert [(f.k, f.origin, f.start, f.end) for f in folds] == [
        (1, 1857, 1858, 1885),
        (2, 1885, 1886, 1913),
        (3, 1913, 1914, 1941),
    ]
    assert fold_definition(folds) == "[[1, 1857, 28], [2, 1885, 28], [3, 1913, 28]]"
    with pytest.raises(ValueError):
        make_folds(60, n_folds=3, horizon=28)


def test_fold_plan_covers_the_next_windows_season() -> None:
    """Four recent windows plus the next forecast window's 28 days 364 and 728 days back."""
    folds = FoldPlan().folds(1941)
    assert [(f.k, f.start, f.end) for f in folds] == [
        (1, 1214, 1241),  # d_1942..d_1969 two years (104 weeks) back
        (2, 1578, 1605),  # one year back
        (3, 1830, 1857),
        (4, 1858, 1885),
        (5, 1886, 1913),
        (6, 1914, 1941),
    ]
    assert all((1941 + 1 - f.start) % 7 == 0 for f in folds)  # same weekdays as the forecast
    # Short histories keep the recent folds and drop seasonal ones without a year of history.
    assert [f.start for f in FoldPlan().folds(730)] == [367, 619, 647, 675, 703]
    assert len(FoldPlan().folds(400)) == 4
    # A seasonal window that is also a recent one is scored once.
    assert len(FoldPlan(recent=14, seasonal=(364,)).folds(1941)) == 14


def test_headline_is_the_mean_ratio_over_folds_with_its_spread() -> None:
    rows = [
        {"model": m, "fold": k, "level": "all", "wrmsse": w}
        for m, ws in {"lightgbm": (0.6, 0.9, 0.3), "seasonal_naive": (1.0, 1.0, 0.5)}.items()
        for k, w in enumerate(ws, 1)
    ]
    h = headline(pl.DataFrame(rows), "lightgbm")
    assert h.ratios == pytest.approx({1: 0.6, 2: 0.9, 3: 0.6})
    assert (h.ratio_mean, h.ratio_min, h.ratio_max) == pytest.approx((0.7, 0.6, 0.9))
    assert h.wrmsse_mean == pytest.approx(0.6) and h.baseline_wrmsse_mean == pytest.approx(2.5 / 3)
    assert "0.700x" in h.describe() and "3 folds" in h.describe()


def test_panel_is_series_by_day_and_excludes_horizon() -> None:
    sl = _sales_long()
    # Shuffle the rows: the panel must not depend on the input order.
    panel = build_panel(sl.sample(fraction=1.0, shuffle=True, seed=1))
    assert panel.sales.shape == (6, 120) and panel.first_day == 1 and panel.last_day == 120
    assert (
        panel.hierarchy["id"].cast(pl.String).to_list()
        == sl["id"].unique(maintain_order=True).cast(pl.String).to_list()
    )
    expected = sl.filter(pl.col("id") == "FOODS_1_003_CA_1", pl.col("d") <= 120)["sales"].to_numpy()
    np.testing.assert_array_equal(panel.sales[3], expected)
    fold = Fold(k=1, origin=100, horizon=20)
    assert panel.history(100).shape == (6, 100)
    np.testing.assert_array_equal(panel.actuals(fold), panel.sales[:, 100:120])
    np.testing.assert_allclose(panel.dollar_sales(100), panel.sales[:, 72:100].sum(1) * 2.0)
    with pytest.raises(ValueError):
        panel.actuals(Fold(k=1, origin=110, horizon=28))


def test_model_backtest_trains_only_before_each_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    sl = _sales_long()
    panel = build_panel(sl)
    folds = make_folds(panel.last_day, 3, 28)
    seen: list[tuple[int, int]] = []
    cutoffs: list[int] = []
    real_fit = family.fit_booster

    def spy_fit(
        frame: pl.DataFrame, spec: object, params: object, rounds: int, mask: pl.Series
    ) -> object:
        rows = frame.filter(mask)
        seen.append((int(rows["d"].min()), int(rows["d"].max())))
        assert rows["is_launched"].all() and rows["sales"].null_count() == 0
        return real_fit(frame, spec, params, rounds, mask)  # type: ignore[arg-type]

    def encoder(frame: pl.DataFrame, cutoff: int) -> pl.DataFrame:
        cutoffs.append(cutoff)
        return frame

    monkeypatch.setattr(family, "fit_booster", spy_fit)
    sl = with_recent_features(sl)
    specs = spec.model_specs(sl.schema, ["x", "item_id"], [])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    group = train.train_group(
        sl,
        family.GLOBAL,
        {"direct": ["CA_1"], "recursive": ["CA_1"]},
        folds,
        specs,
        params,
        {"direct": 4, "recursive": 8},
        10,
        panel.last_day,
        encoder,
    )
    outs = train.assemble_folds([group], panel, folds)
    assert cutoffs == [*(f.origin for f in folds), panel.last_day]  # then the final model
    assert seen == [(10, c) for c in cutoffs for _part in ("direct", "recursive")]
    ids = panel.hierarchy["id"].cast(pl.String).to_list()
    assert group.ids == {"direct": ids, "recursive": ids}
    assert set(group.horizon_parts["direct"]) == {1, 2, 3, 4}
    for out in outs:
        assert set(out.parts) == {"direct", "recursive"}
        assert set(out.parts["direct"]) == {1, 2, 3, 4}  # every checkpoint's forecast
        assert set(out.parts["recursive"]) == {2, 4, 6, 8}  # of the part's own trees
        assert all(
            p.shape == (6, 28) and (p >= 0).all() for f in out.parts.values() for p in f.values()
        )
        blend = out.blend({"direct": 4, "recursive": 2}, 0.25)
        np.testing.assert_allclose(
            blend, 0.75 * out.parts["direct"][4] + 0.25 * out.parts["recursive"][2]
        )


def test_each_part_trains_on_its_own_sample_size(monkeypatch: pytest.MonkeyPatch) -> None:
    sl = with_recent_features(_sales_long())
    panel = build_panel(sl)
    folds = make_folds(panel.last_day, 1, 28)
    rows: dict[int, list[int]] = {}  # trees -> training rows of each fit
    real_fit = family.fit_booster

    def spy_fit(
        frame: pl.DataFrame, spec: object, params: object, rounds: int, mask: pl.Series
    ) -> object:
        rows.setdefault(rounds, []).append(int(mask.sum()))
        return real_fit(frame, spec, params, rounds, mask)  # type: ignore[arg-type]

    monkeypatch.setattr(family, "fit_booster", spy_fit)
    specs = spec.model_specs(sl.schema, ["x", "item_id"], [])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    group = train.train_group(
        sl, family.GLOBAL, {"direct": ["CA_1"], "recursive": ["CA_1"]}, folds, specs, params,
        {"direct": 4, "recursive": 8}, 10, panel.last_day, max_train_rows={"recursive": 100},
    )  # fmt: skip
    # the fold's model, then the final one: every launched row for the direct part, 100 for the
    # recursive one
    assert rows[8] == [100, 100] and all(n > 100 for n in rows[4])
    assert group.train_rows[0] == rows[4][1]


def test_close_fold_origins_share_the_earlier_model() -> None:
    folds = FoldPlan(4, (364, 728)).folds(1941)
    assert train.training_cutoffs(folds) == {f.k: f.origin for f in folds}
    assert train.training_cutoffs(folds, 28) == {1: 1213, 2: 1577, 3: 1829, 4: 1829,
                                                 5: 1885, 6: 1885}  # fmt: skip


def test_a_reused_model_forecasts_its_later_fold_from_that_fold_s_origin() -> None:
    sl = with_recent_features(_sales_long())
    panel = build_panel(sl)
    folds = make_folds(panel.last_day, 3, 28)  # origins 36, 64, 92
    specs = spec.model_specs(sl.schema, ["x", "item_id"], [])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    runs = {}
    for reuse in (0, 28):
        cutoffs: list[int] = []

        def encoder(frame: pl.DataFrame, cutoff: int, seen: list[int] = cutoffs) -> pl.DataFrame:
            seen.append(cutoff)
            return frame

        runs[reuse] = train.train_group(
            sl, family.GLOBAL, {"direct": ["CA_1"], "recursive": ["CA_1"]}, folds, specs, params,
            {"direct": 4, "recursive": 4},
            10, panel.last_day, encoder, reuse_days=reuse,
        )  # fmt: skip
        assert cutoffs == ([36, 64, 92] if reuse == 0 else [36, 92]) + [panel.last_day]
    own, reused = runs[0].fold_parts, runs[28].fold_parts
    for k in (1, 3):  # trained at their own origins either way
        np.testing.assert_array_equal(own[k]["direct"][4], reused[k]["direct"][4])
    assert not np.array_equal(own[2]["direct"][4], reused[2]["direct"][4])
    assert runs[28].train_rows[2] == runs[28].train_rows[1] < runs[0].train_rows[2]
    # fold 2 is the model trained to d_36 forecasting d_65..d_92 from the sales known at d_64
    member = family.fit_model(sl, specs, params, {"direct": 4, "recursive": 4},
                              [train.train_mask(sl, 10, 36)])  # fmt: skip
    member.iterations = {"direct": 4, "recursive": 4}
    test = sl.filter(pl.col("d").is_between(65, 92)).sort("id", "d")
    expected = member.forecast_parts(test, train.history_matrix(sl, 64))
    for part in ("direct", "recursive"):
        np.testing.assert_array_equal(reused[2][part][4], expected[part].reshape(6, 28))


def test_recursive_forecast_reads_no_sales_after_the_origin() -> None:
    """Sales after the origin (known in a backtest) must not reach the recursive forecast."""
    origin, horizon = 92, 28
    frame = with_recent_features(_sales_long())
    leaked = with_recent_features(
        _sales_long().with_columns(
            pl.when(pl.col("d") > origin).then(pl.col("sales") * 50 + 9).otherwise("sales")
        )
    )
    specs = spec.model_specs(frame.schema, ["x", "item_id"], [], parts=("recursive",))
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    member = family.fit_model(frame, specs, params, {"recursive": 5},
                              [train.train_mask(frame, 10, origin)])  # fmt: skip
    model = family.ModelFamily({family.GLOBAL: member}, {"recursive": {"CA_1": family.GLOBAL}})

    def forecast(f: pl.DataFrame) -> np.ndarray:
        rows = f.filter(pl.col("d").is_between(origin + 1, origin + horizon))
        return model.forecast(rows, train.history_matrix(f, origin))

    fold_rows = pl.col("d") > origin + 1
    assert not frame.filter(fold_rows)["recent_mean_7"].equals(
        leaked.filter(fold_rows)["recent_mean_7"]
    )
    np.testing.assert_array_equal(forecast(frame), forecast(leaked))
    rows = frame.filter(pl.col("d").is_between(origin + 1, origin + horizon))
    without_recent = model.forecast(rows.drop(RECENT_COLUMNS), train.history_matrix(frame, origin))
    np.testing.assert_array_equal(without_recent, forecast(frame))  # recomputed, so optional
    one_step = model.predict(leaked.filter(pl.col("d") == origin + 2))
    assert not np.allclose(one_step, forecast(leaked).reshape(6, horizon)[:, 1])


def test_baseline_backtest_scores_every_fold_and_level() -> None:
    panel = build_panel(_sales_long())
    folds = make_folds(panel.last_day, 2, 28)
    frame = backtest_baselines(panel, folds)
    assert frame.height == 6 * 2 * 13
    assert frame.filter(pl.col("level") == "item_store")["mae"].null_count() == 0
    assert (
        frame.filter(pl.col("level") == "total")["mae"].null_count()
        == frame.filter(pl.col("level") == "total").height
    )
    # A perfect forecast would score 0; seasonal naive on Poisson noise clearly does not.
    (sn,) = frame.filter(
        (pl.col("model") == "seasonal_naive") & (pl.col("fold") == 2) & (pl.col("level") == "all")
    )["wrmsse"]
    assert sn > 0.3


def test_baseline_metrics_are_reused_only_when_scored_on_the_same_folds_and_data() -> None:
    panel = build_panel(_sales_long())
    folds = make_folds(panel.last_day, 2, 28)
    scorer = FoldScorer(panel, folds)
    given = backtest_baselines(panel, folds)
    assert baseline_metrics_for(panel, folds, given, scorer) is given
    # Other data (same folds): seasonal naive's WRMSSE differs, so the baselines are recomputed.
    other = backtest_baselines(build_panel(_sales_long(seed=1)), folds)
    recomputed = baseline_metrics_for(panel, folds, other, scorer)
    assert recomputed is not other
    assert recomputed.equals(given)
    # Other folds, or a frame without seasonal naive: recomputed too.
    one_fold = make_folds(panel.last_day, 1, 28)
    assert (
        baseline_metrics_for(panel, one_fold, given, FoldScorer(panel, one_fold)).height
        < given.height
    )
    no_snaive = given.filter(pl.col("model") != "seasonal_naive")
    assert baseline_metrics_for(panel, folds, no_snaive, scorer).equals(given)


def test_per_store_weights_refine_each_store_on_the_mean_over_folds() -> None:
    # Series 3-5 move to a second store; there the recursive part is exact and the direct part
    # is off, and the other way round in the first store.
    sid = pl.col("id").cast(pl.String).str.slice(8, 3).cast(pl.Int32)
    sales = _sales_long().with_columns(
        pl.when(sid >= 3).then(pl.lit("CA_2")).otherwise(pl.col("store_id")).alias("store_id")
    )
    panel = build_panel(sales)
    folds = make_folds(panel.last_day, 2, 28)
    stores = panel.hierarchy["store_id"].to_numpy()
    second = (stores == "CA_2")[:, None]
    outputs = []
    for f in folds:
        actual = panel.actuals(f).astype(np.float64)
        off = actual + 3.0
        parts = {spec.DIRECT: {10: np.where(second, off, actual)},
                 spec.RECURSIVE: {10: np.where(second, actual, off)}}  # fmt: skip
        outputs.append(train.FoldOutput(f, parts, train_rows=0, seconds=0.0))
    scorer = FoldScorer(panel, folds)
    one = choose_blend(outputs, scorer, stores)
    refined = choose_blend(outputs, scorer, stores, per_store=True)
    assert len(set(one.recursive_weight.values())) == 1
    assert refined.recursive_weight == {"CA_1": 0.0, "CA_2": 1.0}
    assert refined.mean_ratio == pytest.approx(0.0, abs=1e-9)
    assert one.mean_ratio > 0.1


def test_out_of_fold_forecasts_use_the_choice_made_on_the_other_folds() -> None:
    # Fold 1 is exact after 10 trees and fold 2 after 20: chosen on both, one of them is exact;
    # chosen on the other fold only, neither is.
    panel = build_panel(_sales_long())
    folds = make_folds(panel.last_day, 2, 28)
    outputs = []
    for f, exact_at in zip(folds, (10, 20), strict=True):
        actual = panel.actuals(f).astype(np.float64)
        trees = {t: actual if t == exact_at else actual + 2.0 for t in (10, 20)}
        outputs.append(train.FoldOutput(f, {spec.DIRECT: trees}, train_rows=0, seconds=0.0))
    scorer = FoldScorer(panel, folds)
    stores = panel.hierarchy["store_id"].to_numpy()
    first, second = outputs
    off = [scorer.ratio(first.fold.k, first.parts[spec.DIRECT][20]),
           scorer.ratio(second.fold.k, second.parts[spec.DIRECT][10])]  # fmt: skip
    in_sample = choose_blend(outputs, scorer, stores)
    assert in_sample.mean_ratio == pytest.approx(min(off) / 2)
    held = out_of_fold_forecasts(outputs, stores, lambda o: choose_blend(o, scorer, stores))
    np.testing.assert_array_equal(held[first.fold.k], first.parts[spec.DIRECT][20])
    np.testing.assert_array_equal(held[second.fold.k], second.parts[spec.DIRECT][10])
    assert scorer.mean_ratio(held) == pytest.approx(np.mean(off))
    assert (
        out_of_fold_forecasts(outputs[:1], stores, lambda o: choose_blend(o, scorer, stores)) == {}
    )


def test_quantile_names() -> None:
    assert (
        quantile_column(0.005) == "q005"
        and quantile_column(0.5) == "q500"
        and quantile_column(0.165) == "q165"
    )
    assert (
        QUANTILE_COLUMNS[0] == "q005"
        and QUANTILE_COLUMNS[-1] == "q995"
        and len(QUANTILE_COLUMNS) == 13
    )


def test_conformal_quantiles_calibrated_monotone_and_bracket_the_point() -> None:
    rng = np.random.default_rng(0)
    level = rng.uniform(0.1, 20, 40_000)
    actual = rng.negative_binomial(5, 5 / (5 + level)).astype(float)
    point = level * rng.uniform(0.9, 1.1, level.size)
    cal = ConformalQuantiles.fit(point[:20_000], actual[:20_000])
    q = cal.predict(point[20_000:])
    assert q.shape == (20_000, len(QUANTILES))
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    lower, upper = q[:, QUANTILES.index(0.1)], q[:, QUANTILES.index(0.9)]
    assert (lower <= point[20_000:]).all() and (point[20_000:] <= upper).all()
    rows = coverage_rows("m", 1, actual[20_000:], q)
    # Discrete data: the nominal level lies between P(y < q) and P(y <= q), up to sampling noise.
    for r in (r for r in rows if r["kind"] == "quantile"):
        assert r["coverage_strict"] - 0.03 <= r["quantile"] <= r["coverage"] + 0.03, r
    interval80 = next(r for r in rows if r["kind"] == "interval" and r["quantile"] == 0.8)
    assert 0.75 <= interval80["coverage"] <= 0.9
    again = ConformalQuantiles.from_dict(cal.to_dict())
    np.testing.assert_allclose(again.predict(point[:10]), cal.predict(point[:10]))


def test_level_quantiles_scale_the_aggregate() -> None:
    f = np.full(100, 100.0)
    a = f * np.linspace(0.8, 1.2, 100)
    cal = ConformalQuantiles.fit(f, a, level_pairs={"store": (f, a)})
    q = cal.predict_level("store", np.array([200.0]))
    assert q.shape == (1, len(QUANTILES))
    assert q[0, QUANTILES.index(0.1)] == pytest.approx(200 * (1 + np.quantile(a / f - 1, 0.1)))


def test_training_window_moves_earlier_only_for_short_histories() -> None:
    from forecasting_assets.modeling.plan import effective_train_start

    real = make_folds(1941, 3, 28)
    assert effective_train_start(1300, real, 1) == 1300  # real M5: as requested
    short = make_folds(500, 3, 28)  # sample data: first origin d_416
    assert effective_train_start(1300, short, 1) == 416 - 364 + 1
    assert effective_train_start(1300, make_folds(200, 3, 28), 1) == 1


def test_training_window_is_bounded_by_rows_at_full_scale() -> None:
    from forecasting_assets.modeling.plan import effective_train_start
    from forecasting_assets.modeling.recent import CONTEXT_DAYS

    real = make_folds(1941, 3, 28)
    # The real subset (5,107 series) fits from d_700; full M5 (30,490) starts later, within bound.
    assert effective_train_start(700, real, 1, 5_107, 16_000_000) == 700
    start = effective_train_start(700, real, 1, 30_490, 16_000_000)
    assert 1400 < start < 1500
    assert 30_490 * (1941 + 28 - (start - CONTEXT_DAYS) + 1) <= 16_000_000
    # ... but never with less than a year of training before the first fold.
    assert effective_train_start(700, real, 1, 30_490, 1_000_000) == real[0].origin - 364 + 1


def test_stores_get_their_own_members_when_the_global_window_would_be_cut() -> None:
    from forecasting_assets.modeling.plan import model_groups

    real = make_folds(1941, 3, 28)
    parts = ("direct", "recursive")

    def same(routing: dict[str, str]) -> dict[str, dict[str, str]]:
        return family.for_every_part(routing, parts)

    subset = {"CA_1": 2440, "TX_2": 2440, "WI_1": 27}  # fits from d_700: one global member
    assert model_groups(subset, TrainingSettings(), real, 1) == same(dict.fromkeys(subset, "*"))
    full = {f"S{i}": 3049 for i in range(10)}  # 30,490 series would cut the window: per store
    assert model_groups(full, TrainingSettings(), real, 1) == same({s: s for s in full})
    # an explicit threshold is taken as it is
    own = {"CA_1": "CA_1", "TX_2": "TX_2", "WI_1": "*"}
    assert model_groups(subset, TrainingSettings(min_store_series=1000), real, 1) == same(own)
    everywhere = TrainingSettings(max_window_rows=0)
    assert model_groups(full, everywhere, real, 1) == same(dict.fromkeys(full, "*"))
    # ... part by part: a global direct part with the big stores' own recursive parts
    by_part = TrainingSettings(part_min_store_series={"recursive": 1000})
    assert model_groups(subset, by_part, real, 1) == {
        "direct": dict.fromkeys(subset, "*"),
        "recursive": own,
    }
    # a part that is not trained may keep its setting
    direct_only = TrainingSettings(parts=("direct",), part_min_store_series={"recursive": 1000})
    assert model_groups(subset, direct_only, real, 1) == {"direct": dict.fromkeys(subset, "*")}
    for name in ("part_min_store_series", "part_max_train_rows"):
        with pytest.raises(ValueError, match=f"{name} names \\['seasonal'\\]"):
            model_groups(subset, TrainingSettings(**{name: {"seasonal": 1}}), real, 1)


def test_a_part_s_rows_are_shared_by_the_members_like_max_train_rows() -> None:
    s = TrainingSettings(max_train_rows=3_000_000, part_max_train_rows={"recursive": 630_000})
    assert (s.max_rows("direct"), s.max_rows("recursive")) == (3_000_000, 630_000)


def test_part_rounds_cap_the_recursive_part() -> None:
    assert TrainingSettings().part_rounds() == {"direct": 125, "recursive": 50}
    assert TrainingSettings(num_boost_round=10).part_rounds() == {"direct": 10, "recursive": 10}
    uncapped = TrainingSettings(recursive_boost_round=None).part_rounds()
    assert uncapped == {"direct": 125, "recursive": 125}
    assert TrainingSettings(parts=("direct",)).part_rounds() == {"direct": 125}
