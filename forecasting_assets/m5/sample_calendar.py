"""The M5 calendar by its own rules, for the sample data generator.

It reproduces the real calendar of 2011-01-29 .. 2016-06-19 exactly and extends it with the same
rules: Walmart weeks (``wm_yr_wk``, Saturday start, fiscal year from the Saturday after January's
last Friday), the M5 events (fixed dates, n-th weekdays, Western and Orthodox Easter, the Hebrew
and Islamic holidays, NBA finals) in the calendar's slot order, and the states' SNAP days.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl

from forecasting_assets.m5.readers import CALENDAR_DTYPES, WEEKDAYS

logger = logging.getLogger(__name__)

START_DATE = dt.date(2011, 1, 29)
"""d_1 of every M5 file (a Saturday, the first day of Walmart week 11101)."""

STATES: tuple[str, ...] = ("CA", "TX", "WI")
SNAP_DAYS: dict[str, frozenset[int]] = {
    "CA": frozenset(range(1, 11)),
    "TX": frozenset({1, 3, 5, 6, 7, 9, 11, 12, 13, 15}),
    "WI": frozenset({2, 3, 5, 6, 8, 9, 11, 12, 14, 15}),
}
"""Days of the month with SNAP benefits per state (the real M5 monthly pattern)."""

CALENDAR_COLUMNS: tuple[str, ...] = tuple(CALENDAR_DTYPES)

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
