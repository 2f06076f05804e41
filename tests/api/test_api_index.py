"""The forecast index and id resolution (pure, no server)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_api.services.errors import LoadError, PredictionError
from forecasting_api.services.feature_source import FeatureSource
from forecasting_api.services.forecast_index import ForecastIndex
from forecasting_api.services.model_bundle import calibration_from, interval_of
from forecasting_api.services.predictor import Query, poisson_interval, predict
from forecasting_api.services.snapshot import Snapshot
from tests.api import helpers as fx

D0 = dt.date(2016, 5, 23)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _frame() -> pl.DataFrame:
    ids = ["A_1_001_CA_1"] * 3 + ["B_2_002_TX_10"] * 3
    dates = [
        D0,
        D0 + dt.timedelta(1),
        D0 + dt.timedelta(2),
        D0,
        D0 + dt.timedelta(2),
        D0 + dt.timedelta(5),
    ]  # second series has gaps
    df = fx.forecasts_from_points(ids, dates, np.arange(1.0, 7.0), "9")
    return df.sample(fraction=1.0, shuffle=True, seed=4)  # order must not matter


def test_lookup_contiguous_gappy_and_missing() -> None:
    idx = ForecastIndex.from_frame(_frame(), Path("forecasts.parquet"), "v")
    snap = Snapshot.compose(idx, None, None, {})
    qs = [
        Query("A_1_001_CA_1", None, D0 + dt.timedelta(1)),
        Query("B_2_002", "TX_10", D0 + dt.timedelta(5)),
        Query("B_2_002_TX_10", None, D0 + dt.timedelta(2)),
    ]
    out = predict(snap, qs, NOW)
    assert [o["predicted_sales"] for o in out] == [2.0, 6.0, 5.0]
    assert out[1]["store_id"] == "TX_10" and out[1]["item_id"] == "B_2_002"
    assert all(o["model_version"] == "9" and o["timestamp"] == "2026-01-01T00:00:00Z" for o in out)
    pos = np.array([idx.series_pos["B_2_002_TX_10"]] * 4)
    e0 = (D0 - dt.date(1970, 1, 1)).days
    rows = idx.rows(pos, np.array([e0, e0 + 1, e0 + 35, e0 - 1]))  # hit, gap, beyond, before
    assert rows.tolist()[1:] == [-1, -1, -1]
    assert idx.pred[rows[0]] == 4.0
    # a gap day without features or model: 503 with a clear message
    with pytest.raises(PredictionError) as err:
        predict(snap, [Query("B_2_002_TX_10", None, D0 + dt.timedelta(1))], NOW)
    assert err.value.status == 503 and "not in the batch forecasts" in err.value.message
    with pytest.raises(PredictionError) as err:
        predict(snap, [Query("A_1_001_CA_1", None, D0 + dt.timedelta(40))], NOW)
    assert err.value.status == 422 and "beyond the forecast horizon" in err.value.message


def test_resolution_prefers_longest_store_suffix() -> None:
    df = pl.concat(
        [
            fx.forecasts_from_points(["X_1_001_TX_1"], [D0], np.array([1.0]), "1"),
            fx.forecasts_from_points(["X_1_001_TX_10"], [D0], np.array([2.0]), "1"),
        ]
    ).with_columns(pl.Series("store_id", ["TX_1", "TX_10"]), pl.lit("X_1_001").alias("item_id"))
    snap = Snapshot.compose(ForecastIndex.from_frame(df, Path("f"), "v"), None, None, {})
    assert snap.resolve("X_1_001_TX_10", None).store_id == "TX_10"
    assert snap.resolve("X_1_001_TX_1", None).store_id == "TX_1"
    assert snap.resolve("X_1_001", "TX_10").series_id == "X_1_001_TX_10"


def test_malformed_forecasts_are_rejected() -> None:
    with pytest.raises(LoadError, match="missing columns"):
        ForecastIndex.from_frame(pl.DataFrame({"id": ["a"]}), Path("f.parquet"), "v")
    with pytest.raises(LoadError, match="no rows"):
        ForecastIndex.from_frame(_frame().head(0), Path("f.parquet"), "v")


def test_poisson_interval_brackets_the_mean() -> None:
    mu = np.array([0.0, 0.3, 2.0, 25.0])
    lo, hi = poisson_interval(mu)
    assert lo.tolist()[0] == 0.0 and hi.tolist()[0] == 0.0
    assert np.all(lo <= mu) and np.all(hi >= mu)
    assert hi[3] - lo[3] > hi[2] - lo[2]


def test_poisson_interval_equals_scipy_quantiles() -> None:
    from scipy.stats import poisson

    mu = np.concatenate([np.linspace(0.001, 3, 200), np.linspace(3, 400, 200)])
    lo, hi = poisson_interval(mu, level=0.8)
    assert np.array_equal(lo, np.minimum(poisson.ppf(0.1, mu), mu))
    assert np.array_equal(hi, np.maximum(poisson.ppf(0.9, mu), mu))


def test_model_answer_interval_is_the_batch_forecasts_per_series_interval() -> None:
    from forecasting_assets.modeling.forecast import forecast_frame
    from forecasting_assets.modeling.quantile_calibration import QuantileCalibration

    rng = np.random.default_rng(0)
    ids = [f"I_{k}_CA_1" for k in range(40)]
    hierarchy = pl.DataFrame(
        {"id": ids, "item_id": [i[:-5] for i in ids], "dept_id": "D", "cat_id": "C",
         "store_id": "CA_1", "state_id": "CA"}
    )  # fmt: skip
    scale = rng.uniform(0.2, 20, (40, 1))
    folds = [rng.poisson(scale, (40, 28)).astype(float) for _ in range(3)]
    cal = calibration_from(QuantileCalibration.fit([f * 0 + scale for f in folds], folds,
                                                   hierarchy).to_dict())  # fmt: skip
    assert isinstance(cal, QuantileCalibration)
    point = rng.uniform(0, 25, 40)
    rows = hierarchy.with_columns(date=pl.lit(D0))
    batch = forecast_frame(rows, point, cal, "1")
    lo, hi = interval_of(cal, point, ids)
    assert np.allclose(lo, batch["lower"].to_numpy()) and np.allclose(hi, batch["upper"])
    pooled, _ = interval_of(cal.fallback, point, ids)
    assert not np.allclose(lo, pooled), "per series, not the pooled id-free quantiles"


def test_interval_from_calibration_uses_q10_q90_by_bin() -> None:
    cal = {
        "quantiles": [0.05, 0.1, 0.5, 0.9, 0.95],
        "edges": [1.0],
        "residuals": [[-1, -0.5, 0, 1, 2], [-3, -2, 0, 4, 6]],
    }
    parsed = calibration_from(cal)
    assert parsed is not None
    lo, hi = interval_of(parsed, np.array([0.5, 3.0]), ["a", "b"])
    assert lo.tolist() == [0.0, 1.0] and hi.tolist() == [1.5, 7.0]
    assert calibration_from({"quantiles": [0.1]}) is None
    assert calibration_from(None) is None


@pytest.mark.parametrize("layout", ["sorted", "shuffled"])
def test_feature_fetch_reads_series_slices_or_scans(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feats = fx.make_features()
    if layout == "shuffled":
        feats = feats.sample(fraction=1.0, shuffle=True, seed=1)
    (tmp_path / "assets").mkdir()
    feats.write_parquet(tmp_path / "assets" / "features.parquet", row_group_size=100)
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    fs = FeatureSource.load()
    assert fs is not None
    assert (fs.runs is not None) == (layout == "sorted")
    day = fx.FIRST_DATE + dt.timedelta(days=40)
    pairs = [
        ("FOODS_3_090_WI_1", day),
        ("HOBBIES_1_002_TX_1", day + dt.timedelta(days=7)),
        ("FOODS_3_090_WI_1", day + dt.timedelta(days=1)),
        ("NOPE_1_001_CA_1", day),
    ]
    got = fs.fetch(pairs, fx.FEATURE_COLUMNS).sort("id", "date")
    want = (
        feats.with_columns(pl.col("id").cast(pl.String))
        .join(
            pl.DataFrame(pairs, schema={"id": pl.String, "date": pl.Date}, orient="row"),
            on=["id", "date"],
        )
        .select("id", "date", *fx.FEATURE_COLUMNS)
        .sort("id", "date")
    )
    assert got.height == 3
    assert got.equals(want)


def test_feature_fetch_computes_the_recursive_models_recent_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recent-sales inputs are not in the table: fetch computes them as training did."""
    from forecasting_assets.modeling.recent import RECENT_COLUMNS, with_recent_features

    feats = fx.make_features().with_columns(is_launched=pl.col("d") > 3).sort("id", "date")
    (tmp_path / "assets").mkdir()
    feats.write_parquet(tmp_path / "assets" / "features.parquet", row_group_size=100)
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    fs = FeatureSource.load()
    assert fs is not None
    cols = ["wday", *RECENT_COLUMNS]
    assert fs.missing([*cols, "no_such"]) == ["no_such"]
    day = fx.FIRST_DATE + dt.timedelta(days=40)
    pairs = [("FOODS_3_090_WI_1", day), ("HOBBIES_1_002_TX_1", day + dt.timedelta(days=9)),
             ("FOODS_3_090_WI_1", fx.FIRST_DATE + dt.timedelta(days=2))]  # fmt: skip
    got = fs.fetch(pairs, cols).sort("id", "date")
    want = (
        with_recent_features(feats)
        .with_columns(pl.col("id").cast(pl.String))
        .join(pl.DataFrame(pairs, schema={"id": pl.String, "date": pl.Date}, orient="row"),
              on=["id", "date"])
        .select("id", "date", *cols)
        .sort("id", "date")
    )  # fmt: skip
    assert got.height == 3 and got["recent_mean_28"].null_count() == 1  # day 3: not launched
    assert got.equals(want)
    assert fs.sample(cols).columns == cols


def test_feature_fetch_keeps_row_groups_decoded_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every day of series that straddle row groups: read alone, then from kept groups."""
    from forecasting_api.services import feature_source

    feats = fx.make_features().sort("id", "date")
    (tmp_path / "assets").mkdir()
    path = tmp_path / "assets" / "features.parquet"
    feats.write_parquet(path, row_group_size=100)
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path))
    monkeypatch.setattr(feature_source, "CACHE_BYTES", 20_000)  # a few 100-row groups
    fs = FeatureSource.load()
    assert fs is not None and fs.groups == (*range(0, feats.height, 100), feats.height)
    ids = ["FOODS_3_090_WI_1", "HOBBIES_1_002_TX_1"]
    pairs = [(i, d) for i in ids for d in feats.filter(pl.col("id") == i)["date"]]
    want = (
        feats.filter(pl.col("id").is_in(ids))
        .with_columns(pl.col("id").cast(pl.String))
        .select("id", "date", *fx.FEATURE_COLUMNS)
        .sort("id", "date")
    )
    assert fs.fetch(pairs, fx.FEATURE_COLUMNS).sort("id", "date").equals(want)
    assert fs.cache.nbytes == 0 and 0 < fs.series_cache.nbytes <= 20_000  # rows read alone
    fs.series_cache.clear()
    for _ in range(2):  # the groups, asked for again, are decoded whole and kept
        assert fs.fetch(pairs, fx.FEATURE_COLUMNS).sort("id", "date").equals(want)
        assert 0 < fs.cache.nbytes <= 20_000 and 0 < fs.series_cache.nbytes <= 20_000
    os.utime(path, ns=(1, 1))  # the file changed under a loaded source: refuse, don't guess
    fs.cache.clear()
    fs.series_cache.clear()
    with pytest.raises(LoadError, match="replaced"):
        fs.fetch(pairs[:1], fx.FEATURE_COLUMNS)


@pytest.mark.parametrize("ordered", [True, False])
def test_series_rows_by_day(ordered: bool) -> None:
    from forecasting_api.services.feature_source import SeriesRows

    days = [D0 + dt.timedelta(k) for k in (0, 1, 2, 4, 7)]  # gaps at 3, 5, 6
    frame = pl.DataFrame({"date": days, "x": [0.0, 1.0, 2.0, 4.0, 7.0]})
    rows = SeriesRows.of(frame if ordered else frame.reverse())
    assert rows.ordered is ordered
    on = rows.on([D0 + dt.timedelta(4)])
    assert on["x"].to_list() == [4.0]
    got = rows.on([D0 + dt.timedelta(k) for k in (7, 3, 0, 9, -1)])
    assert sorted(got["x"].to_list()) == [0.0, 7.0]
    assert rows.on([D0 + dt.timedelta(5)]).height == 0
