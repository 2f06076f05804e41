"""Seeded generator of M5-shaped sample data: ``calendar.csv``, ``sales_train_evaluation.csv``
and ``sell_prices.csv`` with the exact Kaggle M5 columns, id formats, ``d_N`` numbering and
Walmart week keys.

The calendar follows the real M5 rules (it reproduces the real calendar of 2011-01-29 ..
2016-06-19 exactly and extends it with the same rules). Demand is a negative-binomial draw
(gamma-mixed Poisson) of a multiplicative rate built over the whole item x day matrix of each
store: heavy-tailed item popularity, store/state levels and trends, weekly and yearly
seasonality, SNAP uplift in FOODS for the series' own state, event effects (stores closed on
Christmas), price elasticity (permanent price steps and short promotions), late launches with
leading zeros and no price rows before launch, slow local level drift and stock-out spells.
Everything is vectorised numpy; the same arguments give byte-identical files.

CLI: ``python -m forecasting_assets.m5.generator --out data/raw [--demo] [--stores N]
[--items-per-dept N] [--days N] [--seed N] [--gzip]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from forecasting_assets.contracts import HORIZON
from forecasting_assets.settings import atomic_write

logger = logging.getLogger(__name__)

START_DATE = dt.date(2011, 1, 29)
"""d_1 of every M5 file (a Saturday, the first day of Walmart week 11101)."""

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
STATES: tuple[str, ...] = ("CA", "TX", "WI")
SNAP_DAYS: dict[str, frozenset[int]] = {
    "CA": frozenset(range(1, 11)),
    "TX": frozenset({1, 3, 5, 6, 7, 9, 11, 12, 13, 15}),
    "WI": frozenset({2, 3, 5, 6, 8, 9, 11, 12, 14, 15}),
}
"""Days of the month with SNAP benefits per state (the real M5 monthly pattern)."""

CALENDAR_COLUMNS: tuple[str, ...] = (
    "date", "wm_yr_wk", "weekday", "wday", "month", "year", "d",
    "event_name_1", "event_type_1", "event_name_2", "event_type_2",
    "snap_CA", "snap_TX", "snap_WI",
)  # fmt: skip
SALES_ID_COLUMNS: tuple[str, ...] = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
PRICES_COLUMNS: tuple[str, ...] = ("store_id", "item_id", "wm_yr_wk", "sell_price")
FILE_NAMES: dict[str, str] = {
    "calendar": "calendar.csv",
    "sales": "sales_train_evaluation.csv",
    "prices": "sell_prices.csv",
}
WEEKDAYS: tuple[str, ...] = (
    "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
)  # fmt: skip
"""Weekday names by M5 ``wday`` - 1 (M5: 1 = Saturday)."""


@dataclass(frozen=True)
class SampleSize:
    """Size arguments of :func:`generate_m5`."""

    n_stores: int = 10
    items_per_dept: int | None = None
    n_days: int = 1941

    def kwargs(self) -> dict[str, int | None]:
        """The size as keyword arguments for :func:`generate_m5`."""
        return asdict(self)


FULL_SIZE = SampleSize()
"""The real M5 size: 10 stores, 3,049 items (30,490 series), 1,941 days."""
DEMO = SampleSize(n_stores=10, items_per_dept=5, n_days=1000)
"""Default demo size: all 3 states and 10 stores (so SNAP, state/store levels and the 12 WRMSSE
levels are all meaningful), 35 items -> 350 series, 1,000 days (+28 horizon): ~360k long rows,
enough history for yearly lags and several 28-day backtest folds, small enough for minutes."""
DEMO_SIZE: dict[str, int | None] = DEMO.kwargs()


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------
Event = tuple[str, str]

_FIXED_EVENTS: tuple[tuple[str, str, int, int], ...] = (
    ("NewYear", "National", 1, 1),
    ("OrthodoxChristmas", "Religious", 1, 7),
    ("ValentinesDay", "Cultural", 2, 14),
    ("StPatricksDay", "Cultural", 3, 17),
    ("Cinco De Mayo", "Cultural", 5, 5),
    ("IndependenceDay", "National", 7, 4),
    ("Halloween", "Cultural", 10, 31),
    ("VeteransDay", "National", 11, 11),
    ("Christmas", "National", 12, 25),
)
# (name, type, month, ISO weekday Mon=0, n-th occurrence; -1 = last)
_NTH_WEEKDAY_EVENTS: tuple[tuple[str, str, int, int, int], ...] = (
    ("MartinLutherKingDay", "National", 1, 0, 3),
    ("SuperBowl", "Sporting", 2, 6, 1),
    ("PresidentsDay", "National", 2, 0, 3),
    ("Mother's day", "Cultural", 5, 6, 2),
    ("MemorialDay", "National", 5, 0, -1),
    ("Father's day", "Cultural", 6, 6, 3),
    ("LaborDay", "National", 9, 0, 1),
    ("ColumbusDay", "National", 10, 0, 2),
    ("Thanksgiving", "National", 11, 3, 4),
)
# NBA finals dates are not rule-based: the real ones, and a typical schedule for other years.
_NBA_FINALS: dict[int, tuple[dt.date, dt.date]] = {
    2011: (dt.date(2011, 5, 31), dt.date(2011, 6, 12)),
    2012: (dt.date(2012, 6, 12), dt.date(2012, 6, 21)),
    2013: (dt.date(2013, 6, 6), dt.date(2013, 6, 20)),
    2014: (dt.date(2014, 6, 5), dt.date(2014, 6, 15)),
    2015: (dt.date(2015, 6, 4), dt.date(2015, 6, 16)),
    2016: (dt.date(2016, 6, 2), dt.date(2016, 6, 19)),
}
# Observed (moon-sighting) dates that differ from the tabular Islamic calendar.
_ISLAMIC_OVERRIDES: dict[tuple[str, int], dt.date] = {("EidAlAdha", 1435): dt.date(2014, 10, 4)}
# Slot order when two events share a day: by type, except where the real calendar differs.
_TYPE_ORDER = {"Sporting": 0, "Religious": 1, "National": 2, "Cultural": 3}
_SLOT_OVERRIDES: dict[dt.date, tuple[str, ...]] = {dt.date(2014, 4, 20): ("Easter",)}


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (or last, n=-1) given weekday (Mon=0) of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _western_easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def _orthodox_easter(year: int) -> dt.date:
    """Orthodox Easter Sunday (Julian computus, shown as a Gregorian date)."""
    a, b, c = year % 4, year % 7, year % 19
    d = (19 * c + 15) % 30
    e = (2 * a + 4 * b - d + 34) % 7
    month, day = divmod(d + e + 114, 31)
    julian_offset = year // 100 - year // 400 - 2
    return dt.date(year, month, day + 1) + dt.timedelta(days=julian_offset)


_HEBREW_EPOCH = -1373427  # R.D. (proleptic Gregorian ordinal) of 1 Tishri AM 1


def _hebrew_leap(year: int) -> bool:
    return (7 * year + 1) % 19 < 7


def _hebrew_elapsed_days(year: int) -> int:
    months = (235 * year - 234) // 19
    parts = 12084 + 13753 * months
    days = 29 * months + parts // 25920
    return days + 1 if (3 * (days + 1)) % 7 < 3 else days


def _hebrew_new_year(year: int) -> int:
    ny0, ny1, ny2 = (_hebrew_elapsed_days(y) for y in (year - 1, year, year + 1))
    delay = 2 if ny2 - ny1 == 356 else 1 if ny1 - ny0 == 382 else 0
    return _HEBREW_EPOCH + ny1 + delay


def _hebrew_month_length(month: int, year: int) -> int:
    year_length = _hebrew_new_year(year + 1) - _hebrew_new_year(year)
    short = (
        month in (2, 4, 6, 10, 13)
        or (month == 12 and not _hebrew_leap(year))
        or (month == 8 and year_length % 10 != 5)
        or (month == 9 and year_length % 10 == 3)
    )
    return 29 if short else 30


def _hebrew_date(year: int, month: int, day: int) -> dt.date:
    """Gregorian date of a Hebrew date (months: 1 = Nisan ... 7 = Tishri ... 13 = Adar II)."""
    last_month = 13 if _hebrew_leap(year) else 12
    months = [*range(7, month)] if month >= 7 else [*range(7, last_month + 1), *range(1, month)]
    ordinal = _hebrew_new_year(year) + day - 1 + sum(_hebrew_month_length(m, year) for m in months)
    return dt.date.fromordinal(ordinal)


def _islamic_date(year: int, month: int, day: int) -> dt.date:
    """Gregorian date of a (tabular, arithmetic) Islamic date."""
    ordinal = (
        227014 + (year - 1) * 354 + (3 + 11 * year) // 30 + 29 * (month - 1) + month // 2 + day
    )
    return dt.date.fromordinal(ordinal)


def m5_events(first: dt.date, last: dt.date) -> dict[dt.date, list[Event]]:
    """All M5 events between two dates (inclusive), in calendar slot order per day."""
    found: dict[dt.date, list[Event]] = {}

    def add(day: dt.date, name: str, kind: str) -> None:
        if first <= day <= last:
            found.setdefault(day, []).append((name, kind))

    for year in range(first.year - 1, last.year + 2):
        for name, kind, month, mday in _FIXED_EVENTS:
            add(dt.date(year, month, mday), name, kind)
        for name, kind, month, weekday, n in _NTH_WEEKDAY_EVENTS:
            add(_nth_weekday(year, month, weekday, n), name, kind)
        easter = _western_easter(year)
        add(easter, "Easter", "Cultural")
        add(easter - dt.timedelta(days=46), "LentStart", "Religious")
        add(easter - dt.timedelta(days=39), "LentWeek2", "Religious")
        add(_orthodox_easter(year), "OrthodoxEaster", "Religious")
        start, end = _NBA_FINALS.get(year, (None, None))
        if start is None or end is None:
            start = _nth_weekday(year, 6, 3, 1)
            end = start + dt.timedelta(days=12)
        add(start, "NBAFinalsStart", "Sporting")
        add(end, "NBAFinalsEnd", "Sporting")
        hebrew = year + 3760  # the Hebrew year whose Nisan falls in this Gregorian year
        add(_hebrew_date(hebrew, 13 if _hebrew_leap(hebrew) else 12, 14), "Purim End", "Religious")
        add(_hebrew_date(hebrew, 1, 22), "Pesach End", "Religious")
        add(_hebrew_date(hebrew, 9, 25) + dt.timedelta(days=7), "Chanukah End", "Religious")
    for year in range((first.year - 622) * 33 // 32 - 1, (last.year - 622) * 33 // 32 + 3):
        for name, month, mday in (
            ("Ramadan starts", 9, 1),
            ("Eid al-Fitr", 10, 1),
            ("EidAlAdha", 12, 10),
        ):
            day = _ISLAMIC_OVERRIDES.get((name, year)) or _islamic_date(year, month, mday)
            add(day, name, "Religious")
    for day, events in found.items():
        first_names = _SLOT_OVERRIDES.get(day, ())
        events.sort(key=lambda e: (e[0] not in first_names, _TYPE_ORDER[e[1]], e[0]))
    return found


def _fiscal_year_start(year: int) -> dt.date:
    """Walmart fiscal year start: the Saturday after the last Friday of January."""
    jan31 = dt.date(year, 1, 31)
    last_friday = jan31 - dt.timedelta(days=(jan31.weekday() - 4) % 7)
    return last_friday + dt.timedelta(days=1)


def make_calendar(n_days: int) -> pl.DataFrame:
    """The M5 calendar for ``n_days`` days from d_1 = 2011-01-29, with the M5 columns.

    ``date`` is a Date, ``d`` the ``d_N`` label; events are null when there are none.
    """
    if n_days < 1:
        raise ValueError(f"n_days must be >= 1, got {n_days}")
    t = np.arange(n_days)
    dates = np.datetime64(START_DATE, "D") + t
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    mdays = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    last = START_DATE + dt.timedelta(days=n_days - 1)
    fy = list(range(START_DATE.year, last.year + 1))
    fy_starts = np.array([_fiscal_year_start(y) for y in fy], dtype="datetime64[D]")
    fy_idx = np.searchsorted(fy_starts, dates, side="right") - 1
    week = (dates - fy_starts[fy_idx]).astype(np.int64) // 7 + 1
    wm_yr_wk = 10000 + (np.array(fy)[fy_idx] % 100) * 100 + week

    names: list[list[str | None]] = [[None] * n_days for _ in range(4)]
    for day, events in m5_events(START_DATE, last).items():
        i = (day - START_DATE).days
        if len(events) > 2:
            logger.info("more than two events on %s: keeping %s", day, events[:2])
        for slot, (name, kind) in enumerate(events[:2]):
            names[2 * slot][i], names[2 * slot + 1][i] = name, kind
    wday = t % 7 + 1
    columns: dict[str, pl.Series] = {
        "date": pl.Series("date", dates, dtype=pl.Date),
        "wm_yr_wk": pl.Series("wm_yr_wk", wm_yr_wk, dtype=pl.Int16),
        "weekday": pl.Series("weekday", WEEKDAYS).gather(wday - 1),
        "wday": pl.Series("wday", wday, dtype=pl.Int8),
        "month": pl.Series("month", months, dtype=pl.Int8),
        "year": pl.Series("year", years, dtype=pl.Int16),
        "d": pl.Series("d", [f"d_{i}" for i in t + 1], dtype=pl.String),
    }
    for j, col in enumerate(("event_name_1", "event_type_1", "event_name_2", "event_type_2")):
        columns[col] = pl.Series(col, names[j], dtype=pl.String)
    for state in STATES:
        flag = np.isin(mdays, sorted(SNAP_DAYS[state])).astype(np.int8)
        columns[f"snap_{state}"] = pl.Series(f"snap_{state}", flag, dtype=pl.Int8)
    return pl.DataFrame([columns[c].alias(c) for c in CALENDAR_COLUMNS])


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
class _Items:
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


def _make_items(
    rng: np.random.Generator, items_per_dept: int | None, n_weeks: int, n_hist_weeks: int
) -> _Items:
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
    return _Items(item_id, dept, cat, log_pop, regular, ending, launch_week, elasticity)


# --------------------------------------------------------------------------------------------
# One store block: prices (items x weeks) and sales (items x days)
# --------------------------------------------------------------------------------------------
def _store_prices(
    rng: np.random.Generator, items: _Items, launch_week: np.ndarray
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


def _store_sales(
    rng: np.random.Generator,
    items: _Items,
    store: str,
    cal: _CalendarArrays,
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
class _CalendarArrays:
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


def _calendar_arrays(cal: pl.DataFrame, n_hist: int) -> _CalendarArrays:
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
    return _CalendarArrays(
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _write_csv(df: pl.DataFrame, path: Path, compress: bool) -> None:
    with atomic_write(path) as tmp:
        df.write_csv(
            tmp,
            compression="gzip" if compress else "uncompressed",
            check_extension=False,
            date_format="%Y-%m-%d",
        )


def generate_m5(
    out_dir: Path,
    *,
    n_stores: int = 10,
    items_per_dept: int | None = None,
    n_days: int = 1941,
    seed: int = 0,
    compress: bool = False,
) -> dict[str, Path]:
    """Write M5-shaped ``calendar``, ``sales`` and ``prices`` CSV files into ``out_dir``.

    Args:
        out_dir: folder to write into (created if missing).
        n_stores: the first ``n_stores`` of CA_1..CA_4, TX_1..TX_3, WI_1..WI_3 (1-10).
        items_per_dept: items in each of the 7 departments; None = the real M5 counts (3,049).
        n_days: sales days (d_1 = 2011-01-29); calendar and prices cover 28 more days.
        seed: random seed; the same arguments give byte-identical files.
        compress: write ``.csv.gz`` files instead of ``.csv``.

    Returns:
        The written paths by name: ``{"calendar": ..., "sales": ..., "prices": ...}``.
    """
    if not 1 <= n_stores <= len(STORES):
        raise ValueError(f"n_stores must be in 1..{len(STORES)}, got {n_stores}")
    if items_per_dept is not None and items_per_dept < 1:
        raise ValueError(f"items_per_dept must be >= 1 or None, got {items_per_dept}")
    if n_days < 1:
        raise ValueError(f"n_days must be >= 1, got {n_days}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    paths = {key: out_dir / f"{name}{suffix}" for key, name in FILE_NAMES.items()}

    calendar = make_calendar(n_days + HORIZON)
    cal = _calendar_arrays(calendar, n_days)
    seeds = np.random.SeedSequence(seed).spawn(1 + len(STORES))
    n_hist_weeks = int(cal.week_index[n_days - 1]) + 1
    items = _make_items(np.random.default_rng(seeds[0]), items_per_dept, cal.n_weeks, n_hist_weeks)
    stores = STORES[:n_stores]
    n_items = items.item_id.size
    logger.info(
        "generating M5 sample: stores=%d items=%d series=%d days=%d seed=%d out=%s",
        n_stores, n_items, n_items * n_stores, n_days, seed, out_dir,
    )  # fmt: skip

    sales_t = np.empty((n_days, n_items * n_stores), dtype=np.int32)  # day-major for columns
    price_parts: list[pl.DataFrame] = []
    store_names = pl.Series("store_id", stores, dtype=pl.String)
    item_names = pl.Series("item_id", items.item_id, dtype=pl.String)
    week_keys = pl.Series("wm_yr_wk", cal.week_keys, dtype=pl.Int16)
    for s, store in enumerate(stores):
        rng = np.random.default_rng(seeds[1 + s])
        # Launched items open in each store within a few weeks of each other.
        jitter = np.where(items.launch_week > 0, rng.integers(0, 5, size=n_items), 0)
        launch_week = np.minimum(items.launch_week + jitter, n_hist_weeks - 1)
        cents, regular = _store_prices(rng, items, launch_week)
        launch_day = np.where(launch_week > 0, np.searchsorted(cal.week_index, launch_week), 0)
        block = _store_sales(rng, items, store, cal, cents, regular, launch_day)
        sales_t[:, s * n_items : (s + 1) * n_items] = block.T
        item_idx, week_idx = np.nonzero(cents)
        price_parts.append(
            pl.DataFrame(
                [
                    store_names.gather(np.full(item_idx.size, s)),
                    item_names.gather(item_idx),
                    week_keys.gather(week_idx),
                    pl.Series("sell_price", cents[item_idx, week_idx] / 100.0),
                ]
            )
        )
        del block, cents, regular

    store_idx = np.repeat(np.arange(n_stores), n_items)
    item_idx = np.tile(np.arange(n_items), n_stores)
    item_col = item_names.gather(item_idx)
    store_col = store_names.gather(store_idx)
    dept_names = pl.Series("dept_id", [d for d, _ in DEPARTMENTS]).gather(items.dept[item_idx])
    cat_names = pl.Series("cat_id", CATEGORIES).gather(items.cat[item_idx])
    ids = pl.DataFrame([item_col, dept_names, cat_names, store_col]).select(
        (pl.col("item_id") + "_" + pl.col("store_id") + "_evaluation").alias("id"),
        "item_id",
        "dept_id",
        "cat_id",
        "store_id",
        pl.col("store_id").str.slice(0, 2).alias("state_id"),
    )
    day_cols = [pl.Series(f"d_{j + 1}", sales_t[j]) for j in range(n_days)]
    sales = pl.concat([ids, pl.DataFrame(day_cols)], how="horizontal")
    del day_cols
    _write_csv(calendar, paths["calendar"], compress)
    _write_csv(sales, paths["sales"], compress)
    del sales
    _write_csv(pl.concat(price_parts), paths["prices"], compress)
    logger.info(
        "wrote M5 sample in %.1fs: %s",
        time.perf_counter() - started,
        ", ".join(f"{k}={p.name}" for k, p in paths.items()),
    )
    return paths


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: ``python -m forecasting_assets.m5.generator --out data/raw``."""
    parser = argparse.ArgumentParser(description="Write M5-shaped sample data (seeded).")
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder")
    parser.add_argument("--demo", action="store_true", help=f"use the demo size {DEMO_SIZE}")
    parser.add_argument("--stores", type=int, default=None, help="number of stores (1-10)")
    parser.add_argument("--items-per-dept", type=int, default=None, help="items per department")
    parser.add_argument("--days", type=int, default=None, help="sales days (default 1941)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    size = DEMO if args.demo else FULL_SIZE
    paths = generate_m5(
        args.out,
        n_stores=args.stores if args.stores is not None else size.n_stores,
        items_per_dept=args.items_per_dept
        if args.items_per_dept is not None
        else size.items_per_dept,
        n_days=args.days if args.days is not None else size.n_days,
        seed=args.seed,
        compress=args.gzip,
    )
    for name, path in paths.items():
        logger.info("%s: %s (%.1f MB)", name, path, path.stat().st_size / 1e6)


if __name__ == "__main__":
    main()
