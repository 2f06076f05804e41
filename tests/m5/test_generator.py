"""Statistical and layout tests of the M5-shaped sample data generator.

One small data set (10 stores x 7 departments x 20 items, full 1,941 days) is generated per
module; each statistical property is computed by a helper so that a "flat" data set with the
effect switched off (negative control) can show that every check is able to fail.
"""

from __future__ import annotations

import datetime as dt
import gzip
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting_assets.contracts import HORIZON
from forecasting_assets.m5 import generator as gen
from forecasting_assets.m5 import sample_demand as demand
from forecasting_assets.m5.generator import DEMO_SIZE, generate_m5
from forecasting_assets.m5.sample_calendar import SNAP_DAYS, m5_events, make_calendar
from forecasting_assets.m5.sample_demand import DEPARTMENTS, STORES

REAL_DIR = Path(
    os.environ.get("M5_SUBSET_DIR", Path(__file__).resolve().parents[3] / "shared" / "m5")
)
REAL_CALENDAR = REAL_DIR / "calendar.csv"
SIZE = {"n_stores": 10, "items_per_dept": 20, "n_days": 1941}


@dataclass
class Sample:
    """A generated data set as numpy arrays aligned with the sales rows."""

    paths: dict[str, Path]
    sales: pl.DataFrame
    calendar: pl.DataFrame
    prices: pl.DataFrame
    x: np.ndarray  # (series, days) units
    price: np.ndarray  # (series, weeks) sell price, 0 when not on sale
    week_of_day: np.ndarray  # (days,) week index of every sales day


def _load(paths: dict[str, Path]) -> Sample:
    sales = pl.read_csv(paths["sales"])
    calendar = pl.read_csv(paths["calendar"], try_parse_dates=True)
    prices = pl.read_csv(paths["prices"])
    day_cols = [c for c in sales.columns if c.startswith("d_")]
    x = sales.select(day_cols).to_numpy()
    weeks = np.unique(calendar["wm_yr_wk"].to_numpy())
    week_of_day = np.searchsorted(weeks, calendar["wm_yr_wk"].to_numpy())[: len(day_cols)]
    key = sales.select(pl.int_range(pl.len()).alias("row"), "item_id", "store_id")
    p = prices.join(key, on=["item_id", "store_id"], how="inner")
    price = np.zeros((sales.height, weeks.size))
    price[p["row"].to_numpy(), np.searchsorted(weeks, p["wm_yr_wk"].to_numpy())] = p[
        "sell_price"
    ].to_numpy()
    return Sample(paths, sales, calendar, prices, x, price, week_of_day)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return _load(generate_m5(tmp_path_factory.mktemp("m5"), seed=7, **SIZE))


@pytest.fixture(scope="module")
def flat_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Negative control: no weekly pattern, SNAP, elasticity, launches or events; no tail."""
    mp = pytest.MonkeyPatch()
    mp.setattr(demand, "_WEEKLY", np.ones_like(demand._WEEKLY))
    mp.setattr(demand, "_SNAP_UPLIFT", np.ones_like(demand._SNAP_UPLIFT))
    mp.setattr(demand, "_ELASTICITY", (0.0, 0.0, 0.0, 0.0))
    mp.setattr(demand, "LAUNCH_SHARE", 0.0)
    mp.setattr(demand, "_EVENT_EFFECTS", {})
    mp.setattr(demand, "_DATE_EFFECTS", {})
    mp.setattr(demand, "_POP_SIGMA", np.full(3, 0.05))
    mp.setattr(demand, "_BASE_MEDIAN", np.full(3, 5.0))
    try:
        size = {"n_stores": 4, "items_per_dept": 10, "n_days": 1941}
        return _load(generate_m5(tmp_path_factory.mktemp("flat"), seed=7, **size))
    finally:
        mp.undo()


# ---- statistics (each returns the number that a test compares with a threshold) ----------
def zero_share(s: Sample) -> float:
    return float((s.x == 0).mean())


def top_decile_share(s: Sample) -> float:
    """Share of all units sold by the top 10% of items."""
    totals = (
        pl.DataFrame({"item": s.sales["item_id"], "units": s.x.sum(axis=1)})
        .group_by("item")
        .agg(pl.col("units").sum())["units"]
        .sort(descending=True)
        .to_numpy()
    )
    return float(totals[: max(1, totals.size // 10)].sum() / totals.sum())


def late_launch_share(s: Sample) -> float:
    """Share of series whose first price week is after the calendar's first week."""
    on_sale = s.price > 0
    return float((np.argmax(on_sale, axis=1) > 0).mean())


def weekend_ratio(s: Sample) -> float:
    wday = s.calendar["wday"].to_numpy()[: s.x.shape[1]]
    day = s.x.sum(axis=0)
    return float(day[np.isin(wday, [1, 2])].mean() / day[np.isin(wday, [4, 5, 6])].mean())


def snap_ratio(s: Sample, cat: str, state: str, snap_of: str | None = None) -> float:
    """Mean daily units of ``cat`` in ``state`` on SNAP days of ``snap_of`` vs no-SNAP days."""
    rows = ((s.sales["cat_id"] == cat) & (s.sales["state_id"] == state)).to_numpy()
    day = s.x[rows].sum(axis=0)
    n = day.size
    own = s.calendar[f"snap_{state}"].to_numpy()[:n] == 1
    if snap_of is None:
        return float(day[own].mean() / day[~own].mean())
    other = s.calendar[f"snap_{snap_of}"].to_numpy()[:n] == 1
    return float(day[other & ~own].mean() / day[~other & ~own].mean())


def christmas_share(s: Sample) -> float:
    """Units sold on Christmas days relative to the median day."""
    names = s.calendar["event_name_1"].fill_null("").to_numpy()[: s.x.shape[1]]
    day = s.x.sum(axis=0)
    return float(day[names == "Christmas"].mean() / np.median(day))


def price_cut_ratio(s: Sample) -> float:
    """Units in weeks right after a price cut vs the week before (same series, summed)."""
    n_full = (s.x.shape[1] // 7) * 7
    weekly = s.x[:, :n_full].reshape(s.x.shape[0], -1, 7).sum(axis=2)
    p = s.price[:, : weekly.shape[1]]
    cut = np.zeros_like(p, dtype=bool)
    cut[:, 5:] = (
        (p[:, 5:] > 0) & (p[:, 5:] < 0.97 * p[:, 4:-1]) & (p[:, :-5] > 0)
    )  # on sale 5+ weeks before: launch ramp over
    rows, weeks = np.nonzero(cut)
    assert rows.size > 50, "too few price cuts to measure"
    return float(weekly[rows, weeks].sum() / weekly[rows, weeks - 1].sum())


# ---- layout ----------------------------------------------------------------------------------
@pytest.mark.skipif(not REAL_CALENDAR.is_file(), reason="real M5 calendar not available")
def test_calendar_reproduces_the_real_m5_calendar(sample: Sample) -> None:
    real = pl.read_csv(REAL_CALENDAR, try_parse_dates=True)
    assert sample.calendar.columns == real.columns
    assert sample.calendar.height == SIZE["n_days"] + HORIZON == real.height
    for col in real.columns:
        bad = sample.calendar.filter(
            pl.Series(sample.calendar[col].ne_missing(real[col])).fill_null(True)
        )
        assert bad.is_empty(), f"{col} differs on {bad['date'].head(5).to_list()}"
    assert sample.paths["calendar"].read_bytes() == REAL_CALENDAR.read_bytes()


def test_calendar_rules_beyond_the_real_dates() -> None:
    cal = make_calendar(2700).with_columns(pl.col("date").cast(pl.String))
    row = {r["date"]: r for r in cal.iter_rows(named=True)}
    events = {
        "2016-11-24": "Thanksgiving",
        "2016-12-25": "Christmas",
        "2017-01-01": "NewYear",
        "2017-02-05": "SuperBowl",
        "2017-03-01": "LentStart",
        "2017-04-18": "Pesach End",
        "2017-05-27": "Ramadan starts",
        "2017-07-04": "IndependenceDay",
        "2017-09-04": "LaborDay",
    }
    for day, name in events.items():
        assert name in (row[day]["event_name_1"], row[day]["event_name_2"]), day
    assert {row["2017-04-16"]["event_name_1"], row["2017-04-16"]["event_name_2"]} == {
        "Easter",
        "OrthodoxEaster",
    }
    assert row["2016-12-25"]["event_type_1"] == "National"
    # Walmart weeks: Saturday start, year from the Saturday after January's last Friday.
    assert row["2016-06-24"]["wm_yr_wk"] == 11621 and row["2016-06-25"]["wm_yr_wk"] == 11622
    assert row["2017-01-27"]["wm_yr_wk"] == 11652 and row["2017-01-28"]["wm_yr_wk"] == 11701
    assert row["2017-01-28"]["weekday"] == "Saturday" and row["2017-01-28"]["wday"] == 1
    # SNAP patterns.
    june = cal.filter(pl.col("date").str.starts_with("2017-06"))
    for state, days in SNAP_DAYS.items():
        got = set(june.filter(pl.col(f"snap_{state}") == 1)["date"].str.slice(8, 2).cast(int))
        assert got == set(days)
    # Events never repeat on a day; a rare third one (2025-04-20) is dropped from the calendar.
    found = m5_events(dt.date(2011, 1, 1), dt.date(2030, 12, 31))
    assert all(len(set(v)) == len(v) for v in found.values())
    assert len(found[dt.date(2025, 4, 20)]) == 3
    long = make_calendar(5300).filter(pl.col("date") == dt.date(2025, 4, 20))
    assert long.select(pl.col("^event_name_.*$").is_not_null()).row(0) == (True, True)


def test_sales_and_prices_layout(sample: Sample) -> None:
    sales, prices = sample.sales, sample.prices
    n_items = 7 * SIZE["items_per_dept"]
    assert sales.columns[:6] == ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
    assert sales.columns[6:] == [f"d_{i}" for i in range(1, SIZE["n_days"] + 1)]
    assert sales.height == n_items * SIZE["n_stores"]
    assert sales["store_id"].unique(maintain_order=True).to_list() == list(STORES)
    assert sales["id"].n_unique() == sales.height
    pattern = re.compile(r"^((HOBBIES|HOUSEHOLD|FOODS)_\d)_\d{3}$")
    for r in sales.head(3).vstack(sales.tail(3)).iter_rows(named=True):
        m = pattern.match(r["item_id"])
        assert m and r["dept_id"] == m.group(1) and r["cat_id"] == m.group(2), r["item_id"]
        assert r["id"] == f"{r['item_id']}_{r['store_id']}_evaluation"
        assert r["state_id"] == r["store_id"][:2]
    assert sales["item_id"][0] == "HOBBIES_1_001" and sales["item_id"][-1] == "FOODS_3_020"
    assert sales.select(pl.col("^d_.*$").min()).min_horizontal().item() >= 0
    assert prices.columns == ["store_id", "item_id", "wm_yr_wk", "sell_price"]
    assert prices["sell_price"].min() > 0
    assert prices.select("store_id", "item_id", "wm_yr_wk").is_unique().all()
    weeks = sample.calendar["wm_yr_wk"].unique()
    assert prices["wm_yr_wk"].is_in(weeks.implode()).all()
    assert prices["wm_yr_wk"].max() == sample.calendar["wm_yr_wk"].max()  # horizon priced
    assert prices.select("store_id", "item_id").n_unique() == sales.height


def test_real_item_counts() -> None:
    ids, dept, cat = demand._item_table(None)
    assert ids.size == 3049
    assert [int((dept == k).sum()) for k in range(7)] == [n for _, n in DEPARTMENTS]
    assert "FOODS_3_823" in set(ids) and "FOODS_3_824" not in set(ids)
    assert "HOBBIES_2_149" in set(ids) and cat.max() == 2


def test_demo_size_is_valid_kwargs() -> None:
    params = inspect.signature(generate_m5).parameters
    assert set(DEMO_SIZE) <= set(params) and DEMO_SIZE["n_stores"] == 10


@pytest.mark.parametrize(
    "kwargs", [{"n_stores": 0}, {"n_stores": 11}, {"items_per_dept": 0}, {"n_days": 0}]
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate_m5(tmp_path, **kwargs)


# ---- demand properties -----------------------------------------------------------------------
def test_intermittent_demand(sample: Sample, flat_sample: Sample) -> None:
    assert 0.5 <= zero_share(sample) <= 0.8
    assert zero_share(flat_sample) < 0.5


def test_heavy_tailed_popularity(sample: Sample, flat_sample: Sample) -> None:
    assert top_decile_share(sample) > 0.4
    assert top_decile_share(flat_sample) < 0.4


def test_launches_have_leading_zeros_and_no_prices(sample: Sample, flat_sample: Sample) -> None:
    assert 0.10 <= late_launch_share(sample) <= 0.35
    assert late_launch_share(flat_sample) < 0.10
    first_price_week = np.argmax(sample.price > 0, axis=1)
    first_price_day = np.searchsorted(sample.week_of_day, first_price_week)
    first_sale_day = np.argmax(sample.x > 0, axis=1)
    assert (sample.x.sum(axis=1) > 0).all()
    assert (first_sale_day >= first_price_day).all()  # no sales while not on sale
    launched = first_price_week > 0
    assert (first_sale_day[launched] > 0).all()  # leading zeros
    # Prices, once listed, continue to the end of the calendar.
    on_sale = sample.price > 0
    assert (on_sale.sum(axis=1) == on_sale.shape[1] - first_price_week).all()


def test_weekend_peak(sample: Sample, flat_sample: Sample) -> None:
    assert weekend_ratio(sample) > 1.15
    assert weekend_ratio(flat_sample) < 1.05


def test_snap_uplift_in_foods_of_own_state_only(sample: Sample, flat_sample: Sample) -> None:
    foods = [snap_ratio(sample, "FOODS", st) for st in ("CA", "TX", "WI")]
    hobbies = [snap_ratio(sample, "HOBBIES", st) for st in ("CA", "TX", "WI")]
    assert min(foods) > 1.06
    assert np.mean(hobbies) < np.mean(foods) - 0.05
    assert snap_ratio(sample, "FOODS", "TX", snap_of="CA") < 1.04
    assert snap_ratio(sample, "FOODS", "WI", snap_of="TX") < 1.04
    assert snap_ratio(flat_sample, "FOODS", "CA") < 1.03


def test_christmas_closure(sample: Sample, flat_sample: Sample) -> None:
    assert christmas_share(sample) < 0.01
    assert christmas_share(flat_sample) > 0.5


def test_price_cut_raises_demand(sample: Sample, flat_sample: Sample) -> None:
    assert price_cut_ratio(sample) > 1.15
    assert price_cut_ratio(flat_sample) < 1.08


def test_store_levels_and_prices(sample: Sample) -> None:
    store_mean = pl.DataFrame({"store": sample.sales["store_id"], "u": sample.x.mean(axis=1)})
    means = dict(store_mean.group_by("store").agg(pl.col("u").mean()).iter_rows())
    assert means["CA_3"] > 1.5 * means["CA_4"]
    cents = (sample.prices["sell_price"] * 100).round().cast(pl.Int64) % 10
    assert cents.is_in([7, 8]).mean() > 0.6
    by_cat = dict(
        sample.prices.join(sample.sales.select("item_id", "cat_id").unique(), on="item_id")
        .group_by("cat_id")
        .agg(pl.col("sell_price").median())
        .iter_rows()
    )
    assert by_cat["FOODS"] < by_cat["HOUSEHOLD"] and by_cat["FOODS"] < by_cat["HOBBIES"]
    assert 1.5 < by_cat["FOODS"] < 4.0 and by_cat["HOUSEHOLD"] < 8.0


# ---- determinism, compression, CLI -------------------------------------------------------------
def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    small = {"n_stores": 2, "items_per_dept": 3, "n_days": 120}
    a = generate_m5(tmp_path / "a", seed=1, **small)
    b = generate_m5(tmp_path / "b", seed=1, **small)
    c = generate_m5(tmp_path / "c", seed=2, **small)
    for key in ("calendar", "sales", "prices"):
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert a["sales"].read_bytes() != c["sales"].read_bytes()
    assert a["prices"].read_bytes() != c["prices"].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        ["calendar.csv", "sales_train_evaluation.csv", "sell_prices.csv"]
    )  # no temp files left behind


def test_gzip_output_is_readable_and_equal(tmp_path: Path) -> None:
    small = {"n_stores": 1, "items_per_dept": 2, "n_days": 90}
    plain = generate_m5(tmp_path / "plain", seed=3, **small)
    packed = generate_m5(tmp_path / "gz", seed=3, compress=True, **small)
    for key in ("calendar", "sales", "prices"):
        assert packed[key].name.endswith(".csv.gz")
        assert packed[key].read_bytes()[:2] == b"\x1f\x8b"
        with gzip.open(packed[key], "rb") as fh:
            assert fh.read() == plain[key].read_bytes()
        assert pl.read_csv(packed[key]).equals(pl.read_csv(plain[key]))


def test_cli_writes_files(tmp_path: Path) -> None:
    gen.main(["--out", str(tmp_path), "--stores", "1", "--items-per-dept", "2", "--days", "60"])
    sales = pl.read_csv(tmp_path / "sales_train_evaluation.csv")
    assert sales.shape == (14, 66)
    assert pl.read_csv(tmp_path / "calendar.csv").height == 88


def test_failed_write_keeps_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"n_stores": 1, "items_per_dept": 2, "n_days": 60}
    paths = generate_m5(tmp_path, seed=1, **small)
    before = {k: p.read_bytes() for k, p in paths.items()}

    def broken_write(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", broken_write)
    with pytest.raises(OSError, match="disk full"):
        generate_m5(tmp_path, seed=2, **small)
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert len(list(tmp_path.iterdir())) == 3  # no temp files left behind
