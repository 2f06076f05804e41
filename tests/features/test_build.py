"""Feature table vs a plain per-series reference implementation, and per-store equivalence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from forecasting_assets.features import (
    FeatureConfig,
    build_features,
    feature_columns,
    feature_context,
    output_columns,
    training_filter,
)
from forecasting_assets.features.calendar import EVENT_NAMES, EVENT_TYPES
from forecasting_assets.features.columns import lag_name, roll_names
from forecasting_assets.features.pipeline import iter_feature_batches, write_features

CFG = FeatureConfig()
SalesLong = Callable[..., pl.DataFrame]


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else np.nan


def _nanstd(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.std(ddof=1)) if x.size >= 2 else np.nan


def _arr(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Float64).fill_null(np.nan).to_numpy()


def reference(sl: pl.DataFrame, cfg: FeatureConfig, cutoff: int) -> dict[str, np.ndarray]:
    """Plain loops per series (rows of ``sl`` in order) for the sales and price families."""
    out: dict[str, list[float]] = {}

    def put(name: str, values: list[float]) -> None:
        out.setdefault(name, []).extend(values)

    dept_week: dict[tuple, list[float]] = {}
    weekly = sl.unique(["id", "wm_yr_wk"], keep="first", maintain_order=True)
    for row in weekly.select("store_id", "dept_id", "wm_yr_wk", "sell_price").iter_rows():
        if row[3] is not None:
            dept_week.setdefault((str(row[0]), str(row[1]), row[2]), []).append(row[3])
    enc: dict[str, dict[tuple, list[float]]] = {k: {} for k in cfg.encoding_keys}
    for r in sl.filter(training_filter() & (pl.col("d") <= cutoff)).iter_rows(named=True):
        dow = r["date"].isoweekday()
        for name, key in (
            ("te_item_store", (str(r["id"]),)),
            ("te_item_store_dow", (str(r["id"]), dow)),
            ("te_store_dept", (str(r["store_id"]), str(r["dept_id"]))),
        ):
            enc[name].setdefault(key, []).append(r["sales"])

    for _, g in sl.group_by("id", maintain_order=True):
        n = g.height
        launched = g["is_launched"].to_numpy()
        y = np.where(launched, _arr(g["sales"]), np.nan)
        p = _arr(g["sell_price"])
        for k in cfg.direct_lags:
            put(lag_name(k), [y[t - k] if t >= k else np.nan for t in range(n)])
        s = cfg.rolling_shift
        for w in cfg.windows:
            m_name, s_name = roll_names(w, s)
            # full windows inside the series only (pre-launch days inside are skipped)
            wins = [
                y[t - s - w + 1 : t - s + 1] if t >= s + w - 1 else np.array([]) for t in range(n)
            ]
            put(m_name, [_nanmean(x) for x in wins])
            put(s_name, [_nanstd(x) for x in wins])
        put(
            "price_change_1w",
            [p[t] / p[t - 7] - 1 if t >= 7 and p[t - 7] > 0 else np.nan for t in range(n)],
        )
        for name, span in (("price_momentum_4w", 28), ("price_momentum_year", 364)):
            put(
                name,
                [p[t] / _nanmean(p[max(0, t - span) : t]) if t >= 1 else np.nan for t in range(n)],
            )
        pw = _arr(g.unique("wm_yr_wk", keep="first", maintain_order=True)["sell_price"])
        put("price_rel_item", list(p / _nanmean(pw)))
        valid = pw[~np.isnan(pw)]
        put("price_n_unique", [float(len(set(valid.tolist())))] * n)
        put("price_min", [valid.min() if valid.size else np.nan] * n)
        put("price_max", [valid.max() if valid.size else np.nan] * n)
        put("price_std", [_nanstd(pw)] * n)
        for r in g.iter_rows(named=True):
            prices = dept_week.get((str(r["store_id"]), str(r["dept_id"]), r["wm_yr_wk"]))
            rel = r["sell_price"] / np.mean(prices) if r["sell_price"] is not None else np.nan
            put("price_rel_dept", [rel])
            dow = r["date"].isoweekday()
            for name, key in (
                ("te_item_store", (str(r["id"]),)),
                ("te_item_store_dow", (str(r["id"]), dow)),
                ("te_store_dept", (str(r["store_id"]), str(r["dept_id"]))),
            ):
                vals = enc[name].get(key)
                put(name, [float(np.mean(vals)) if vals else np.nan])
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def _compare(sl: pl.DataFrame, cfg: FeatureConfig = CFG) -> None:
    got = build_features(sl, cfg)
    assert got.height == sl.height
    assert got.select("id", "d").equals(sl.select("id", "d"))
    cutoff = int(sl.filter(pl.col("sales").is_not_null())["d"].max()) - cfg.encoding_cutoff_offset
    ref = reference(sl, cfg, cutoff)
    for name, want in ref.items():
        have = _arr(got[name])
        np.testing.assert_allclose(have, want, rtol=2e-5, atol=1e-5, equal_nan=True, err_msg=name)


def test_matches_reference_on_sample(make_sales_long: SalesLong) -> None:
    _compare(make_sales_long(n_stores=2, items_per_store=4, n_days=90, seed=1))


def test_matches_reference_with_custom_windows(make_sales_long: SalesLong) -> None:
    cfg = FeatureConfig(direct_lags=(28, 35), windows=(3, 10), rolling_shift=30)
    _compare(make_sales_long(n_stores=1, items_per_store=3, n_days=70, seed=5), cfg)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_stores=st.integers(1, 3),
    items=st.integers(1, 3),
    n_days=st.integers(20, 80),
    seed=st.integers(0, 10_000),
)
def test_property_matches_reference(
    make_sales_long: SalesLong, n_stores: int, items: int, n_days: int, seed: int
) -> None:
    cfg = FeatureConfig(windows=(7, 28, 40))
    _compare(
        make_sales_long(n_stores=n_stores, items_per_store=items, n_days=n_days, seed=seed), cfg
    )


def test_calendar_and_events(make_sales_long: SalesLong) -> None:
    sl = make_sales_long(n_stores=1, items_per_store=1, n_days=100, seed=3)
    got = build_features(sl)
    events = {r["d"] for r in sl.iter_rows(named=True) if r["event_name_1"] or r["event_name_2"]}
    for r, f in zip(sl.iter_rows(named=True), got.iter_rows(named=True), strict=True):
        day: dt.date = r["date"]
        assert f["day_of_week"] == day.isoweekday()
        assert f["day_of_month"] == day.day
        assert f["week_of_year"] == day.isocalendar().week
        assert (f["month"], f["quarter"], f["year"]) == (
            day.month,
            (day.month - 1) // 3 + 1,
            day.year,
        )
        assert f["is_weekend"] == int(day.isoweekday() >= 6)
        assert f["is_month_start"] == int(day.day == 1)
        assert f["is_month_end"] == int((day + dt.timedelta(days=1)).month != day.month)
        assert f["has_event"] == int(r["d"] in events)
        nxt = [e - r["d"] for e in events if e >= r["d"]]
        prv = [r["d"] - e for e in events if e <= r["d"]]
        assert f["days_to_next_event"] == (min(nxt) if nxt else None)
        assert f["days_since_prev_event"] == (min(prv) if prv else None)
        name, kind = r["event_name_1"], r["event_type_1"]
        assert f["event_name_1_code"] == (0 if name is None else EVENT_NAMES.index(name) + 1)
        assert f["event_type_1_code"] == (0 if kind is None else EVENT_TYPES.index(kind) + 1)
        kind2 = r["event_type_2"]
        assert f["event_type_2_code"] == (0 if kind2 is None else 99)  # sample uses an unknown type
        assert f["snap"] == r["snap"]


def test_schema_and_dtypes(make_sales_long: SalesLong) -> None:
    got = build_features(make_sales_long(seed=2))
    assert got.columns == output_columns()
    for c in ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id"):
        assert isinstance(got.schema[c], pl.Enum)
    assert got.schema[lag_name(28)] == pl.Int16
    assert got.schema[roll_names(28, 28)[0]] == pl.Float32
    assert got.schema["sell_price"] == pl.Float32
    assert got.schema["day_of_week"] == pl.Int8
    assert got.schema["sales"] == pl.Int32


def test_feature_columns() -> None:
    direct = feature_columns()
    assert not any(c in direct for c in (lag_name(1), lag_name(7), lag_name(14)))
    assert not any(c.startswith("sales_lag_") and c not in direct for c in output_columns())
    assert all(c in output_columns() or c in ("item_id", "dept_id", "cat_id", "store_id", "state_id")
               for c in direct)  # fmt: skip
    assert "sales" not in direct and "is_launched" not in direct
    with pytest.raises(ValueError):
        feature_columns(mode="other")


def test_config_rejects_leaky_settings() -> None:
    with pytest.raises(ValueError):
        FeatureConfig(direct_lags=(7,))
    with pytest.raises(ValueError):
        FeatureConfig(rolling_shift=7)
    with pytest.raises(ValueError):
        FeatureConfig(encoding_keys={"te_item_state": ("item_id", "state_id")})


def test_launch_mask_and_training_filter(make_sales_long: SalesLong) -> None:
    sl = make_sales_long(n_stores=1, items_per_store=4, n_days=80, seed=11)
    got = build_features(sl)
    assert got["is_launched"].equals(sl["is_launched"])
    train = got.filter(training_filter())
    assert train["sales"].null_count() == 0 and train["is_launched"].all()
    # lag 28, 27 days after the first launched day, reads the day before it: a leading zero
    first = got.filter(pl.col("is_launched")).group_by("id").agg(pl.col("d").min())
    first = first.filter(pl.col("d") > 1).with_columns(pl.col("d") + 27)
    rows = got.join(first, on=["id", "d"])
    assert rows.height and rows[lag_name(28)].null_count() == rows.height
    assert (
        got.join(first.with_columns(pl.col("d") + 1), on=["id", "d"])[lag_name(28)].null_count()
        == 0
    )


def test_per_store_equals_whole(make_sales_long: SalesLong) -> None:
    sl = make_sales_long(n_stores=3, items_per_store=4, n_days=120, seed=7)
    whole = build_features(sl)
    ctx = feature_context(sl)
    parts = [
        build_features(sl.filter(pl.col("store_id") == s), context=ctx)
        for s in sl["store_id"].unique(maintain_order=True)
    ]
    assert_frame_equal(pl.concat(parts), whole)
    assert_frame_equal(pl.concat(list(iter_feature_batches(sl.lazy()))), whole)
    assert_frame_equal(pl.concat(list(iter_feature_batches(sl.lazy(), workers=2))), whole)


def test_write_features_streams_same_table(make_sales_long: SalesLong, tmp_path) -> None:
    sl = make_sales_long(n_stores=2, items_per_store=3, n_days=60, seed=4)
    path = tmp_path / "features.parquet"
    result = write_features(sl.lazy(), path)
    whole = build_features(sl)
    assert result.rows == whole.height
    assert_frame_equal(pl.read_parquet(path), whole)
    st_lag = result.stats[lag_name(28)]
    col = whole[lag_name(28)]
    assert st_lag["null_share"] == pytest.approx(col.null_count() / whole.height, abs=1e-6)
    assert st_lag["mean"] == pytest.approx(col.mean())
    assert st_lag["min"] == col.min() and st_lag["max"] == col.max()


def test_rejects_unsorted_or_gappy_input(make_sales_long: SalesLong) -> None:
    sl = make_sales_long(n_stores=1, items_per_store=2, n_days=60, seed=8)
    with pytest.raises(ValueError, match="not contiguous"):
        build_features(sl.filter(pl.col("d") != 30))
    first = sl["id"][0]
    with pytest.raises(ValueError, match="sorted by series"):
        build_features(sl.filter((pl.col("id") != first) | (pl.col("d") != 30)))
    with pytest.raises(ValueError, match="sorted by series"):
        build_features(sl.sort("d", "id"))
