"""The demand and price model of the sample data generator: items, shelf prices, daily sales.

Demand is a negative-binomial draw (gamma-mixed Poisson) of a multiplicative rate built over the
whole item x day matrix of each store: heavy-tailed item popularity, store/state levels and trends,
weekly and yearly seasonality, SNAP uplift in FOODS for the series' own state, event effects
(stores closed on Christmas), price elasticity (permanent price steps and short promotions), late
launches with leading zeros and no price rows before launch, slow local level drift and stock-out
spells. Everything is vectorised numpy and drawn from the caller's seeded generators.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from forecasting_assets.m5.sample_calendar import STATES

DEPARTMENTS: tuple[tuple[str, int], ...] = (
    ("HOBBIES_1", 416),
    ("HOBBIES_2", 149),
    ("HOUSEHOLD_1", 532),
    ("HOUSEHOLD_2", 515),
    ("FOODS_1", 216),
    ("FOODS_2", 398),
    ("FOODS_3", 823),
)
"""Departments in the Kaggle file order with their real item counts (3,049 items)."""
CATEGORIES: tuple[str, ...] = ("HOBBIES", "HOUSEHOLD", "FOODS")
STORES: tuple[str, ...] = (
    "CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Demand and price model parameters (category order: HOBBIES, HOUSEHOLD, FOODS)
# --------------------------------------------------------------------------------------------
_WEEKLY = np.array(
    [  # Sat   Sun   Mon   Tue   Wed   Thu   Fri
        [1.20, 1.18, 1.00, 0.94, 0.93, 0.94, 1.05],
        [1.32, 1.30, 0.98, 0.89, 0.88, 0.90, 1.02],
        [1.30, 1.33, 1.02, 0.90, 0.88, 0.90, 1.04],
    ]
)
# Yearly seasonality: (amplitude of log, day of year of the peak) per category.
_YEARLY = np.array([[0.07, 345.0], [0.05, 200.0], [0.06, 220.0]])
# Median daily units of an average item-store series and the log-sd of item popularity.
_BASE_MEDIAN = np.array([0.30, 0.40, 0.80])
_POP_SIGMA = np.array([1.3, 1.2, 1.4])
# Regular shelf price per category: median dollars and log-sd.
_PRICE_MEDIAN = np.array([3.3, 4.5, 2.6])
_PRICE_SIGMA = np.array([0.9, 0.5, 0.55])
_PRICE_ENDINGS = np.array([8, 7, 4, 0, 6])
_PRICE_ENDING_P = np.array([0.45, 0.3, 0.1, 0.1, 0.05])
# SNAP uplift per department (DEPARTMENTS order): FOODS only, a trace in HOUSEHOLD.
_SNAP_UPLIFT = np.array([1.0, 1.0, 1.02, 1.02, 1.08, 1.10, 1.14])
# Event multipliers (HOBBIES, HOUSEHOLD, FOODS), measured on the real M5 subset and rounded.
_EVENT_EFFECTS: dict[str, tuple[float, float, float]] = {
    "Christmas": (0.001, 0.001, 0.001),  # stores closed
    "Thanksgiving": (0.46, 0.67, 0.97),
    "NewYear": (0.75, 0.92, 0.88),
    "Easter": (0.70, 0.75, 0.96),
    "IndependenceDay": (0.75, 0.86, 1.15),
    "LaborDay": (1.15, 1.30, 1.30),
    "SuperBowl": (0.95, 0.85, 1.04),
    "Mother's day": (0.91, 0.78, 0.88),
    "Father's day": (0.91, 0.85, 0.90),
    "Halloween": (0.90, 0.88, 0.90),
    "ValentinesDay": (0.90, 0.86, 1.02),
    "PresidentsDay": (1.04, 1.15, 1.02),
    "MartinLutherKingDay": (1.08, 1.08, 1.06),
    "VeteransDay": (0.90, 1.02, 1.10),
    "LentStart": (1.05, 1.0, 1.10),
    "ColumbusDay": (1.05, 1.0, 1.06),
    "Cinco De Mayo": (1.04, 1.0, 1.06),
}
# Days around Christmas by (month, day): shopping peak before, closure day handled by event.
_DATE_EFFECTS: dict[tuple[int, int], tuple[float, float, float]] = {
    (12, 22): (1.0, 1.05, 1.08),
    (12, 23): (1.0, 1.12, 1.22),
    (12, 24): (0.85, 0.88, 1.06),
    (12, 26): (1.0, 1.18, 0.96),
}
# Store level, yearly log-trend and an optional level shift (date, log shift), e.g. remodels.
_STATE_LEVEL = {"CA": 1.05, "TX": 0.92, "WI": 0.97}
_STORE_LEVEL = {
    "CA_1": 1.05, "CA_2": 0.78, "CA_3": 1.50, "CA_4": 0.58, "TX_1": 0.90,
    "TX_2": 1.08, "TX_3": 0.95, "WI_1": 0.78, "WI_2": 1.05, "WI_3": 0.98,
}  # fmt: skip
_STORE_TREND = {
    "CA_1": 0.03, "CA_2": 0.02, "CA_3": 0.02, "CA_4": 0.03, "TX_1": 0.02,
    "TX_2": 0.01, "TX_3": 0.04, "WI_1": 0.06, "WI_2": 0.03, "WI_3": -0.02,
}  # fmt: skip
_STORE_SHIFT = {"CA_2": (dt.date(2015, 6, 1), 0.30), "WI_2": (dt.date(2012, 6, 1), 0.25)}
# Price elasticity of demand per item: -clip(normal(mean, sd), lo, hi).
_ELASTICITY = (1.8, 0.5, 0.4, 4.0)
LAUNCH_SHARE = 0.2
"""Share of items that launch part-way through the history (leading zeros, no prices)."""


@dataclass(frozen=True)
class Items:
    """Item-level attributes and draws shared by all stores."""

    item_id: np.ndarray  # str
    dept: np.ndarray  # int index into DEPARTMENTS
    cat: np.ndarray  # int index into CATEGORIES
    log_popularity: np.ndarray  # float
    regular_cents: np.ndarray  # (items, weeks) int64 regular shelf price path
    ending: np.ndarray  # int last price digit (cents) per item
    launch_week: np.ndarray  # int week index of the item's launch (0 = from the start)
    elasticity: np.ndarray  # float < 0


def _item_table(items_per_dept: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = [n if items_per_dept is None else items_per_dept for _, n in DEPARTMENTS]
    width = max(3, len(str(max(counts))))
    ids, dept = [], []
    for k, ((name, _), n) in enumerate(zip(DEPARTMENTS, counts, strict=True)):
        ids += [f"{name}_{i:0{width}d}" for i in range(1, n + 1)]
        dept += [k] * n
    dept_arr = np.array(dept)
    cat_of_dept = np.array([CATEGORIES.index(name.rsplit("_", 1)[0]) for name, _ in DEPARTMENTS])
    return np.array(ids), dept_arr, cat_of_dept[dept_arr]


def _quantise(cents: np.ndarray, ending: np.ndarray) -> np.ndarray:
    """Walmart-like prices: whole dimes plus a fixed last digit (x.x8, x.x7, ...), >= 0.10."""
    dimes = np.floor(np.asarray(cents, dtype=np.float64) / 10.0).astype(np.int64)
    return np.maximum(dimes, 1) * 10 + ending


def _step_path(
    rng: np.random.Generator, n_rows: int, n_weeks: int, per_week: float, loc: float, sd: float
) -> np.ndarray:
    """Cumulative sum of sparse random jumps (rows x weeks), vectorised with a diff array."""
    counts = rng.poisson(per_week * n_weeks, size=n_rows)
    rows = np.repeat(np.arange(n_rows), counts)
    weeks = rng.integers(1, max(n_weeks, 2), size=rows.size)
    jumps = rng.normal(loc, sd, size=rows.size)
    diff = np.zeros((n_rows, n_weeks + 1))
    np.add.at(diff, (rows, weeks), jumps)
    return np.cumsum(diff[:, :n_weeks], axis=1)


def make_items(
    rng: np.random.Generator, items_per_dept: int | None, n_weeks: int, n_hist_weeks: int
) -> Items:
    item_id, dept, cat = _item_table(items_per_dept)
    n = item_id.size
    log_base_price = np.log(_PRICE_MEDIAN[cat]) + _PRICE_SIGMA[cat] * rng.standard_normal(n)
    log_base_price = np.clip(log_base_price, np.log(0.3), np.log(60.0))
    ending = rng.choice(_PRICE_ENDINGS, p=_PRICE_ENDING_P, size=n)
    # Permanent price steps: ~1 per item over the real 5.4 years, mostly upwards.
    steps = _step_path(rng, n, n_weeks, 1.0 / 282, 0.05, 0.08)
    regular = _quantise(100.0 * np.exp(log_base_price[:, None] + steps), ending[:, None])
    # Heavy-tailed popularity, a little higher for cheap items.
    z = rng.standard_normal(n)
    rel_price = log_base_price - np.log(_PRICE_MEDIAN[cat])
    log_pop = np.log(_BASE_MEDIAN[cat]) + _POP_SIGMA[cat] * z - 0.25 * rel_price
    launched_late = rng.random(n) < LAUNCH_SHARE
    latest = max(1, int(n_hist_weeks * 0.8))
    launch_week = np.where(launched_late, rng.integers(1, latest + 1, size=n), 0)
    if n_hist_weeks < 8:  # too short a history for launches to mean anything
        launch_week[:] = 0
    mean, sd, lo, hi = _ELASTICITY
    elasticity = -np.clip(rng.normal(mean, sd, size=n), lo, hi)
    return Items(item_id, dept, cat, log_pop, regular, ending, launch_week, elasticity)


# --------------------------------------------------------------------------------------------
# One store block: prices (items x weeks) and sales (items x days)
# --------------------------------------------------------------------------------------------
def store_prices(
    rng: np.random.Generator, items: Items, launch_week: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shelf prices in cents (items x weeks, 0 = not on sale) and the promotion depth."""
    n, n_weeks = items.regular_cents.shape
    regular = items.regular_cents
    # ~10% of item-stores price a little differently from the chain.
    local = rng.random(n) < 0.1
    factor = np.where(local, rng.uniform(0.9, 1.1, size=n), 1.0)
    regular = np.where(
        local[:, None], _quantise(regular * factor[:, None], items.ending[:, None]), regular
    )
    # Short promotions: ~1.3 per series over 5.4 years, 1-4 weeks, 10-35% off.
    counts = rng.poisson(1.3 / 282 * n_weeks, size=n)
    rows = np.repeat(np.arange(n), counts)
    start = rng.integers(0, max(n_weeks, 1), size=rows.size)
    end = np.minimum(start + rng.integers(1, 5, size=rows.size), n_weeks)
    depth = rng.uniform(0.10, 0.35, size=rows.size)
    diff = np.zeros((n, n_weeks + 1))
    np.add.at(diff, (rows, start), depth)
    np.add.at(diff, (rows, end), -depth)
    promo = np.clip(np.cumsum(diff[:, :n_weeks], axis=1), 0.0, 0.5)
    promo[promo < 1e-9] = 0.0
    promo_cents = _quantise(regular * (1.0 - promo), items.ending[:, None])
    promo_cents = np.where(promo_cents >= regular, regular - 10, promo_cents)
    cents = np.where(promo > 0, np.maximum(promo_cents, 8), regular)
    on_sale = np.arange(n_weeks)[None, :] >= launch_week[:, None]
    return np.where(on_sale, cents, 0), regular


def store_sales(
    rng: np.random.Generator,
    items: Items,
    store: str,
    cal: CalendarArrays,
    cents: np.ndarray,
    regular: np.ndarray,
    launch_day: np.ndarray,
) -> np.ndarray:
    """Daily unit sales (items x history days) of one store, int32."""
    n = items.item_id.size
    n_days = cal.n_hist
    week = cal.week_index[:n_days]
    state = store.split("_")[0]
    f32 = np.float32

    # Series-level constants.
    log_level = (
        items.log_popularity
        + 0.45 * rng.standard_normal(n)
        + np.log(_STORE_LEVEL[store] * _STATE_LEVEL[state])
    )
    # Time effects shared by the store (days) and by category (3 x days).
    years = cal.t[:n_days] / 365.25
    store_t = _STORE_TREND[store] * years
    if store in _STORE_SHIFT:
        when, shift = _STORE_SHIFT[store]
        store_t = store_t + shift * (cal.dates[:n_days] >= np.datetime64(when))
    cat_t = np.log(_WEEKLY / _WEEKLY.mean(axis=1, keepdims=True))[:, cal.wday_idx[:n_days]]
    cat_t = cat_t + _YEARLY[:, :1] * np.cos(
        2 * np.pi * (cal.doy[:n_days] - _YEARLY[:, 1:]) / 365.25
    )
    cat_t = cat_t + cal.event_log[:, :n_days] + store_t[None, :]

    log_rate = (log_level[:, None] + cat_t[items.cat]).astype(f32)
    snap = cal.snap[state][:n_days].astype(f32)
    log_rate += np.log(_SNAP_UPLIFT[items.dept]).astype(f32)[:, None] * snap[None, :]
    # Slow local level drift (weekly random walk) of every series.
    drift = np.cumsum(rng.normal(0.0, 0.025, size=(n, cal.n_weeks)), axis=1)
    drift -= drift.mean(axis=1, keepdims=True)
    # Prices: promotions move demand with the item's elasticity, permanent steps with half of it.
    safe_cents = np.where(cents > 0, cents, regular)
    price_log = items.elasticity[:, None] * (
        np.log(safe_cents / regular) + 0.5 * np.log(regular / regular[:, :1])
    )
    log_rate += (drift + price_log).astype(f32)[:, week]
    lam = np.exp(log_rate)
    del log_rate
    # Late launches: nothing before the launch day, then a ramp-up over ~a month.
    late = np.flatnonzero(launch_day > 0)
    since = cal.t[None, :n_days] - launch_day[late, None]
    lam[late] *= (1.0 - np.exp(-np.maximum(since + 1, 0) / 25.0)).astype(f32)
    del since
    # Stock-out spells (~1.5 per series over 5.4 years, mean 12 days).
    counts = rng.poisson(1.5 / 1941 * n_days, size=n)
    rows = np.repeat(np.arange(n), counts)
    s0 = rng.integers(0, n_days, size=rows.size)
    s1 = np.minimum(s0 + rng.geometric(1 / 12, size=rows.size), n_days)
    diff = np.zeros((n, n_days + 1), dtype=np.int16)
    np.add.at(diff, (rows, s0), 1)
    np.add.at(diff, (rows, s1), -1)
    lam[np.cumsum(diff[:, :n_days], axis=1, dtype=np.int16) > 0] = 0.0
    # Gamma-mixed Poisson = negative binomial with series-level dispersion.
    shape = rng.uniform(0.6, 3.0, size=(n, 1)).astype(f32)
    lam *= rng.standard_gamma(shape, size=(n, n_days), dtype=f32) / shape
    sales = rng.poisson(lam).astype(np.int32)
    # Every series sells at least a little after launch (M5 has no all-zero series).
    empty = np.flatnonzero(sales.sum(axis=1) == 0)
    if empty.size:
        open_days = np.flatnonzero(cal.event_log[2, :n_days] > -3)
        lo = np.searchsorted(open_days, launch_day[empty])
        pick = lo + (rng.random(empty.size) * np.maximum(open_days.size - lo, 1)).astype(int)
        sales[empty, open_days[np.minimum(pick, open_days.size - 1)]] = 1
    return sales


@dataclass(frozen=True)
class CalendarArrays:
    """Numpy views of the calendar used by the demand model."""

    n_hist: int
    n_weeks: int
    t: np.ndarray
    dates: np.ndarray
    doy: np.ndarray
    wday_idx: np.ndarray
    week_index: np.ndarray
    week_keys: np.ndarray
    snap: dict[str, np.ndarray]
    event_log: np.ndarray  # (3 categories, days) log multiplier of events and dates


def calendar_arrays(cal: pl.DataFrame, n_hist: int) -> CalendarArrays:
    dates = cal["date"].to_numpy().astype("datetime64[D]")
    keys = cal["wm_yr_wk"].to_numpy()
    week_keys, week_index = np.unique(keys, return_inverse=True)
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    months = cal["month"].to_numpy()
    mdays = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    event_log = np.zeros((len(CATEGORIES), cal.height))
    for col in ("event_name_1", "event_name_2"):
        names = cal[col].fill_null("").to_numpy()
        for name, effect in _EVENT_EFFECTS.items():
            hit = names == name
            event_log[:, hit] += np.log(np.array(effect))[:, None]
    for (month, mday), effect in _DATE_EFFECTS.items():
        hit = (months == month) & (mdays == mday)
        event_log[:, hit] += np.log(np.array(effect))[:, None]
    return CalendarArrays(
        n_hist=n_hist,
        n_weeks=week_keys.size,
        t=np.arange(cal.height),
        dates=dates,
        doy=doy,
        wday_idx=cal["wday"].to_numpy().astype(np.int64) - 1,
        week_index=week_index,
        week_keys=week_keys,
        snap={s: cal[f"snap_{s}"].to_numpy() for s in STATES},
        event_log=event_log,
    )
