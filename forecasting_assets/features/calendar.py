"""Calendar and event features: one row per day, gathered onto the grid by ``d``."""

from __future__ import annotations

import polars as pl

# Fixed codes so that an event keeps its code across data versions (0 = no event, 99 = unknown).
EVENT_TYPES: tuple[str, ...] = ("Cultural", "National", "Religious", "Sporting")
EVENT_NAMES: tuple[str, ...] = (
    "Chanukah End", "Christmas", "Cinco De Mayo", "ColumbusDay", "Easter", "Eid al-Fitr",
    "EidAlAdha", "Father's day", "Halloween", "IndependenceDay", "LaborDay", "LentStart",
    "LentWeek2", "MartinLutherKingDay", "MemorialDay", "Mother's day", "NBAFinalsEnd",
    "NBAFinalsStart", "NewYear", "OrthodoxChristmas", "OrthodoxEaster", "Pesach End",
    "PresidentsDay", "Purim End", "Ramadan starts", "StPatricksDay", "SuperBowl",
    "Thanksgiving", "ValentinesDay", "VeteransDay",
)  # fmt: skip
UNKNOWN_CODE = 99

_CAL_INPUT: tuple[str, ...] = (
    "d", "date", "wm_yr_wk", "event_name_1", "event_type_1", "event_name_2", "event_type_2",
)  # fmt: skip


def _code(col: str, names: tuple[str, ...]) -> pl.Expr:
    mapping = {name: i + 1 for i, name in enumerate(names)}
    known = pl.col(col).replace_strict(mapping, default=UNKNOWN_CODE, return_dtype=pl.Int8)
    return pl.when(pl.col(col).is_null()).then(pl.lit(0, pl.Int8)).otherwise(known)


def calendar_features(days: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Calendar and event features per day (contiguous ``d``), from ``sales_long`` or a calendar.

    Needs ``d, date, wm_yr_wk`` and the event columns; duplicate days are collapsed. Also returns
    ``week_index`` (0-based rank of ``wm_yr_wk``), used to key weekly statistics. Days to the next /
    since the previous event are null when no such event is in the calendar.
    """
    cal = (
        days.lazy()
        .select(_CAL_INPUT)
        # Event columns may arrive as String, Categorical or Enum: compare as strings.
        .with_columns(pl.col(c).cast(pl.String) for c in _CAL_INPUT[3:])
        .unique(subset="d", keep="any")
        .sort("d")
        .with_columns(
            has_event=pl.col("event_name_1").is_not_null() | pl.col("event_name_2").is_not_null()
        )
        .with_columns(_ev_d=pl.when(pl.col("has_event")).then(pl.col("d")).cast(pl.Int32))
        .select(
            pl.col("d"),
            (pl.col("wm_yr_wk").rank("dense") - 1).cast(pl.Int32).alias("week_index"),
            # ISO day of week: Monday=1 .. Sunday=7 (M5's wday, 1=Saturday, stays in sales_long).
            pl.col("date").dt.weekday().cast(pl.Int8).alias("day_of_week"),
            pl.col("date").dt.day().cast(pl.Int8).alias("day_of_month"),
            pl.col("date").dt.week().cast(pl.Int8).alias("week_of_year"),
            pl.col("date").dt.month().cast(pl.Int8).alias("month"),
            pl.col("date").dt.quarter().cast(pl.Int8).alias("quarter"),
            pl.col("date").dt.year().cast(pl.Int16).alias("year"),
            (pl.col("date").dt.weekday() >= 6).cast(pl.Int8).alias("is_weekend"),
            (pl.col("date").dt.day() == 1).cast(pl.Int8).alias("is_month_start"),
            (pl.col("date") == pl.col("date").dt.month_end()).cast(pl.Int8).alias("is_month_end"),
            pl.col("has_event").cast(pl.Int8),
            _code("event_type_1", EVENT_TYPES).alias("event_type_1_code"),
            _code("event_name_1", EVENT_NAMES).alias("event_name_1_code"),
            _code("event_type_2", EVENT_TYPES).alias("event_type_2_code"),
            (pl.col("_ev_d").backward_fill() - pl.col("d"))
            .cast(pl.Int16)
            .alias("days_to_next_event"),
            (pl.col("d") - pl.col("_ev_d").forward_fill())
            .cast(pl.Int16)
            .alias("days_since_prev_event"),
        )
        .collect()
    )
    if cal.height and int(cal["d"][-1]) - int(cal["d"][0]) + 1 != cal.height:
        raise ValueError("sales_long days are not contiguous: lags and windows need every day")
    return cal
