"""Pure polars builders of the feature table from ``sales_long``.

The input is sorted by series then ``d`` with one row per series and day (history + horizon),
days contiguous within a series. Per-series windows are computed as *one pass over the sorted
grid*: a global ``shift`` / cumulative sum over the whole column, masked where the window would
cross a series boundary (using the row's position within its series). Window sums use exact
integer arithmetic (sales, prices in cents), so results do not depend on how the rows are batched.
Group statistics are looked up with dense gathers on the Enum codes instead of joins.

Leakage rules (the direct model forecasts days ``origin+1 .. origin+horizon``):

* sales lags are all ``>= horizon``; rolling windows end at lag ``rolling_shift >= horizon``;
* target encodings use only days ``d <= cutoff_d`` (see :func:`add_target_encodings`).

Every group statistic is keyed within a store (item×store, store×dept, store×dept×week), so
building the table store by store and concatenating gives exactly the whole-table result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.m5.transform import last_history_day

logger = logging.getLogger(__name__)

ID_COLS: tuple[str, ...] = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
KEY_COLS: tuple[str, ...] = (*ID_COLS, "d", "date", "wm_yr_wk")
TARGET = "sales"
INPUT_COLS: tuple[str, ...] = (*KEY_COLS, "snap", "sell_price", TARGET, "is_launched")

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

CALENDAR_FEATURES: tuple[str, ...] = (
    "day_of_week", "day_of_month", "week_of_year", "month", "quarter", "year",
    "is_weekend", "is_month_start", "is_month_end",
)  # fmt: skip
EVENT_FEATURES: tuple[str, ...] = (
    "has_event", "event_type_1_code", "event_name_1_code", "event_type_2_code",
    "days_to_next_event", "days_since_prev_event",
)  # fmt: skip
PRICE_FEATURES: tuple[str, ...] = (
    "sell_price", "price_change_1w", "price_momentum_4w", "price_momentum_year",
    "price_rel_item", "price_rel_dept", "price_n_unique", "price_min", "price_max", "price_std",
)  # fmt: skip
_CAL_INPUT: tuple[str, ...] = (
    "d", "date", "wm_yr_wk", "event_name_1", "event_type_1", "event_name_2", "event_type_2",
)  # fmt: skip
_SMALL_INT_CARDINALITY = {"day_of_week": 8, "wday": 8, "month": 13, "quarter": 5}


def lag_name(k: int) -> str:
    """Column name of the sales lag ``k``."""
    return f"sales_lag_{k}"


def roll_names(w: int, shift: int) -> tuple[str, str]:
    """Column names (mean, std) of the ``w``-day rolling window ending at lag ``shift``."""
    return f"sales_rmean_{shift}_{w}", f"sales_rstd_{shift}_{w}"


def encoding_names(cfg: FeatureConfig) -> list[str]:
    """Names of the target-encoding columns."""
    return list(cfg.encoding_keys)


def training_filter() -> pl.Expr:
    """Rows a model may train on: launched (on/after the first sale) and with a known target.

    Rows before a series' first sale are leading zeros, not demand: ``df.filter(training_filter())``.
    """
    return pl.col("is_launched") & pl.col(TARGET).is_not_null()


# ---------------------------------------------------------------------------------------------
# Sorted-grid window helpers
# ---------------------------------------------------------------------------------------------


def _series_position() -> pl.Expr:
    """``_pos``: 0-based row position within the series (rows sorted by series then day)."""
    new = (pl.col("id") != pl.col("id").shift(1)).fill_null(True)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    return (row - pl.when(new).then(row).forward_fill()).cast(pl.Int32).alias("_pos")


def _cumulative(name: str, x: pl.Expr, *, squares: bool = True) -> list[pl.Expr]:
    """Within-series running sums (inclusive) used by :func:`_window_sum`; exact integers.

    ``{name}_c`` sum of values (nulls as 0), ``{name}_n`` count of non-nulls and, with
    ``squares``, ``{name}_q`` sum of squares. One global ``cum_sum`` minus its value just before
    the series' first row (forward-filled).
    """
    v = x.fill_null(0).cast(pl.Int64)
    parts = [("c", v), ("n", x.is_not_null().cast(pl.Int64))]
    if squares:
        parts.append(("q", v * v))
    first = pl.col("_pos") == 0
    out = []
    for suffix, val in parts:
        cum = val.cum_sum()
        base = pl.when(first).then(cum - val).forward_fill()
        out.append((cum - base).alias(f"{name}_{suffix}"))
    return out


def _window_sum(col: str, start: int, end: int) -> pl.Expr:
    """Sum over the rows ``i-end .. i-start`` of the same series (clipped at its first row).

    ``col`` is a within-series running sum from :func:`_cumulative`. Null when the window lies
    entirely before the series' first row.
    """
    c = pl.col(col)
    lower = pl.when(pl.col("_pos") > end).then(c.shift(end + 1)).otherwise(0)
    return pl.when(pl.col("_pos") >= start).then(c.shift(start) - lower)


def _window_sums(
    name: str, start: int, end: int, tag: str, *, squares: bool = True
) -> list[pl.Expr]:
    """Window sums ``_{tag}_s``, ``_{tag}_n`` (and ``_{tag}_q``) over rows ``i-end .. i-start``."""
    out = [
        _window_sum(f"{name}_c", start, end).alias(f"_{tag}_s"),
        _window_sum(f"{name}_n", start, end).alias(f"_{tag}_n"),
    ]
    if squares:
        out.append(_window_sum(f"{name}_q", start, end).alias(f"_{tag}_q"))
    return out


def _rolling_stats(shift: int, windows: Sequence[int]) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Rolling (mean, std) of ``_y`` over rows ``i-shift-w+1 .. i-shift`` for every window ``w``.

    One global running sum per component (``_Cs`` values with nulls as 0, ``_Cn`` non-null count,
    ``_Cq`` squares; exact integers) is shifted once per distinct offset (``shift`` is shared by
    all windows), and every window sum is a difference of two shifted running sums. Returns
    (shifted columns, statistics): the shifted columns must be computed in an earlier step.
    Null unless the whole window lies inside the row's series (``_pos >= shift + w - 1``);
    nulls of the target inside the window (pre-launch days) are skipped via the count.
    """
    offsets = sorted({shift, *(shift + w for w in windows)})
    shifted = [
        pl.col(f"_C{kind}").shift(k, fill_value=0).alias(f"_C{kind}{k}")
        for k in offsets
        for kind in "snq"
    ]
    stats = []
    for w in windows:
        full = pl.col("_pos") >= shift + w - 1

        def diff(kind: str, w: int = w) -> pl.Expr:
            return (pl.col(f"_C{kind}{shift}") - pl.col(f"_C{kind}{shift + w}")).cast(pl.Float64)

        s, n, q = diff("s"), diff("n"), diff("q")
        mean = pl.when(full & (n > 0)).then(s / n)
        std = pl.when(full & (n > 1)).then(((q - s * s / n) / (n - 1)).clip(lower_bound=0.0).sqrt())
        m_name, s_name = roll_names(w, shift)
        stats += [mean.cast(pl.Float32).alias(m_name), std.cast(pl.Float32).alias(s_name)]
    return shifted, stats


def _check_grid(stage: pl.DataFrame) -> None:
    """Fail loudly unless rows are grouped by series with consecutive days (shifts need it)."""
    row = stage.select(
        pl.col("_gap").sum().alias("gaps"),
        (pl.col("_pos") == 0).sum().alias("blocks"),
        pl.col("id").n_unique().alias("series"),
    ).row(0, named=True)
    if row["gaps"] or row["blocks"] != row["series"]:
        raise ValueError(
            "sales_long must be sorted by series then d with every day present: found "
            f"{row['gaps']} day gaps and {row['blocks']} series blocks for {row['series']} series"
        )


def _within(k: int) -> pl.Expr:
    """True where the row ``k`` rows above belongs to the same series."""
    return pl.col("_pos") >= k


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den).cast(pl.Float32)


# ---------------------------------------------------------------------------------------------
# Dense lookups (group statistics broadcast back to rows without a join)
# ---------------------------------------------------------------------------------------------


def _dense_key(
    schema: pl.Schema, keys: Sequence[str], cardinality: dict[str, int] | None = None
) -> tuple[pl.Expr, int] | None:
    """Row-major integer code of ``keys`` and the number of codes; None if not all dense."""
    known = {**_SMALL_INT_CARDINALITY, **(cardinality or {})}
    expr: pl.Expr | None = None
    size = 1
    for key in keys:
        dtype = schema[key]
        if isinstance(dtype, pl.Enum):
            code = pl.col(key).to_physical().cast(pl.Int64)
            card = len(dtype.categories)
        elif key in known:
            code = pl.col(key).cast(pl.Int64)
            card = known[key]
        else:
            return None
        expr = code if expr is None else expr * card + code
        size *= card
    if expr is None or size > 50_000_000:
        return None
    return expr, size


def _lookup(
    frame: pl.LazyFrame,
    stats: pl.DataFrame,
    keys: Sequence[str],
    values: Sequence[str],
    cardinality: dict[str, int] | None = None,
) -> pl.LazyFrame:
    """Attach ``values`` of ``stats`` (one row per ``keys``) to the rows of ``frame``.

    Uses a gather on the dense key code when all keys are Enums or small non-negative ints of
    known ``cardinality``; otherwise a left join.
    """
    schema = frame.collect_schema()
    dense = _dense_key(schema, keys, cardinality)
    if dense is None:
        return frame.join(
            stats.select(*keys, *values).lazy(), on=list(keys), how="left", maintain_order="left"
        )
    key_expr, size = dense
    idx = stats.select(key_expr.alias("_k"))["_k"]
    cols = []
    for name in values:
        dense_values = pl.Series(name, [None], dtype=stats.schema[name]).extend_constant(
            None, size - 1
        )
        dense_values = dense_values.scatter(idx, stats[name])
        cols.append(pl.lit(dense_values).gather(key_expr).alias(name))
    return frame.with_columns(cols)


# ---------------------------------------------------------------------------------------------
# Calendar / events (one row per day, gathered by d)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Shared context, target encodings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureContext:
    """What every partition of the table must share: the calendar and the encoding cutoff."""

    calendar: pl.DataFrame
    last_history_d: int
    encoding_cutoff_d: int


def feature_context(
    sales_long: pl.LazyFrame | pl.DataFrame,
    cfg: FeatureConfig | None = None,
    encoding_cutoff_d: int | None = None,
) -> FeatureContext:
    """Calendar features and cutoff computed once from the whole ``sales_long``.

    The default cutoff is ``last_history_d - cfg.encoding_cutoff_offset``.
    """
    cfg = cfg or FeatureConfig()
    lf = sales_long.lazy()
    last = last_history_day(lf)
    cutoff = last - cfg.encoding_cutoff_offset if encoding_cutoff_d is None else encoding_cutoff_d
    # The grid is rectangular: the first series' days are the calendar. Fall back to every row
    # when its day range differs from the table's.
    lo, hi = lf.select(pl.col("d").min(), pl.col("d").max().alias("hi")).collect().row(0)
    head = lf.slice(0, int(hi) - int(lo) + 1).collect()  # slice: reads the first row group only
    try:
        calendar = calendar_features(head)
        ok = head["id"].n_unique() == 1 and calendar.height == head.height
    except ValueError:
        ok = False
    if not ok:
        calendar = calendar_features(lf)
    return FeatureContext(calendar, last, int(cutoff))


def encoding_stats(
    frame: pl.LazyFrame | pl.DataFrame, cutoff_d: int, cfg: FeatureConfig | None = None
) -> dict[str, pl.DataFrame]:
    """Per encoding: mean target of its group over training rows with ``d <= cutoff_d``.

    One group-by over the union of all key columns (sums and counts), then each encoding
    re-aggregates that small table: exact, and one pass over the rows instead of one per key.
    """
    cfg = cfg or FeatureConfig()
    union = list(dict.fromkeys(k for keys in cfg.encoding_keys.values() for k in keys))
    train = frame.lazy().filter(training_filter() & (pl.col("d") <= cutoff_d))
    base = (
        train.group_by(union)
        .agg(pl.col(TARGET).cast(pl.Int64).sum().alias("_sum"), pl.len().alias("_n"))
        .collect()
    )
    out = {}
    for name, keys in cfg.encoding_keys.items():
        out[name] = base.group_by(list(keys)).agg(
            (pl.col("_sum").sum() / pl.col("_n").sum()).cast(pl.Float32).alias(name)
        )
    return out


def add_target_encodings(
    features: pl.LazyFrame | pl.DataFrame, cutoff_d: int, cfg: FeatureConfig | None = None
) -> pl.LazyFrame:
    """(Re)compute the mean-target encodings from training rows with ``d <= cutoff_d`` only.

    Each encoding is the mean of ``sales`` over launched rows of its group (``cfg.encoding_keys``,
    all within a store) up to the cutoff; null for groups without such rows. Existing encoding
    columns are replaced, so modeling code can call this once per backtest fold. The group means
    are computed now (one pass over ``features``); the returned frame is lazy.
    """
    cfg = cfg or FeatureConfig()
    lf = features.lazy()
    names = encoding_names(cfg)
    stats = encoding_stats(lf, cutoff_d, cfg)
    lf = lf.drop([n for n in names if n in lf.collect_schema().names()])
    for name, keys in cfg.encoding_keys.items():
        lf = _lookup(lf, stats[name], keys, [name])
    return lf


# ---------------------------------------------------------------------------------------------
# The feature table
# ---------------------------------------------------------------------------------------------


def output_columns(cfg: FeatureConfig | None = None) -> list[str]:
    """All columns of the feature table, in order (keys, target, launch flag, features)."""
    cfg = cfg or FeatureConfig()
    return [*KEY_COLS, TARGET, "is_launched", *feature_columns(cfg, include_ids=False)]


def _id_from_item_store(schema: pl.Schema) -> pl.Expr | None:
    """``id`` codes from the item and store codes (``id == f"{item_id}_{store_id}"``).

    Decoding the ~30k-category ``id`` Enum from Parquet costs ~10x more than the item and store
    columns (measured). None unless every id category is exactly one item_store pair.
    """
    ids, items, stores = (schema.get(c) for c in ("id", "item_id", "store_id"))
    if not all(isinstance(t, pl.Enum) for t in (ids, items, stores)):
        return None
    assert isinstance(ids, pl.Enum) and isinstance(items, pl.Enum) and isinstance(stores, pl.Enum)
    item_code = {c: i for i, c in enumerate(items.categories)}
    store_code = {c: i for i, c in enumerate(stores.categories)}
    n_stores = len(store_code)
    table: list[str | None] = [None] * (len(item_code) * n_stores)
    for name in ids.categories:
        item, _, store = name.rpartition("_")
        item, _, state = item.rpartition("_")
        store = f"{state}_{store}"
        if item not in item_code or store not in store_code:
            return None
        slot = item_code[item] * n_stores + store_code[store]
        if table[slot] is not None:
            return None
        table[slot] = name
    lut = pl.Series("id", table, dtype=ids)
    key = pl.col("item_id").to_physical().cast(pl.Int64) * n_stores + pl.col(
        "store_id"
    ).to_physical().cast(pl.Int64)
    return pl.lit(lut).gather(key).alias("id")


def _read_input(sales_long: pl.LazyFrame) -> pl.DataFrame:
    """The input columns, with ``id`` rebuilt from item and store codes when possible."""
    schema = sales_long.collect_schema()
    id_expr = _id_from_item_store(schema)
    if id_expr is None:
        return sales_long.select(INPUT_COLS).collect()
    frame = sales_long.select([c for c in INPUT_COLS if c != "id"]).collect()
    frame = frame.with_columns(id_expr)
    if frame["id"].null_count():  # an item/store pair without an id category
        return sales_long.select(INPUT_COLS).collect()
    return frame.select(INPUT_COLS)


def build_features(
    sales_long: pl.LazyFrame | pl.DataFrame,
    cfg: FeatureConfig | None = None,
    *,
    context: FeatureContext | None = None,
) -> pl.DataFrame:
    """The feature table (same rows and order as ``sales_long``), computed in memory.

    Pass a ``context`` (:func:`feature_context` of the whole table) when building one store at a
    time, so all parts share the calendar and the encoding cutoff. For the whole M5 use
    :func:`forecasting_assets.features.pipeline.features_lazy` (store by store, streaming).
    """
    cfg = cfg or FeatureConfig()
    if context is None:
        context = feature_context(sales_long, cfg)
    t0 = time.perf_counter()
    frame = _read_input(sales_long.lazy())
    logger.debug("features: read %d rows in %.2fs", frame.height, time.perf_counter() - t0)
    cal = context.calendar
    d0 = int(cal["d"][0]) if cal.height else 0
    day_idx = pl.col("d").cast(pl.Int32) - d0
    cal_cols = [c for c in cal.columns if c != "d"]

    # Sales count as demand only once the series is launched (leading zeros are not demand).
    # Int16 once (strict: fails loudly on overflow) so the lags are plain shifts.
    y = pl.when(pl.col("is_launched")).then(pl.col(TARGET)).cast(pl.Int16)
    cents = (pl.col("sell_price").cast(pl.Float64) * 100).round(0)
    y0 = pl.col("_y").fill_null(0).cast(pl.Int64)
    grid = (
        frame.lazy()
        .with_columns(_series_position(), _y=y, _cents=cents, _di=day_idx)
        .with_columns(
            # Global running sums (exact integers) for the rolling windows, see _rolling_stats.
            y0.cum_sum().alias("_Cs"),
            pl.col("_y").is_not_null().cast(pl.Int64).cum_sum().alias("_Cn"),
            (y0 * y0).cum_sum().alias("_Cq"),
            *_cumulative("_p", pl.col("_cents"), squares=False),
            # rows whose previous row is the same series but not the previous day
            ((pl.col("_pos") > 0) & (pl.col("d") - pl.col("d").shift(1) != 1)).alias("_gap"),
            # first row of each series-week: weekly price statistics use one price per week
            ((pl.col("_pos") == 0) | (pl.col("wm_yr_wk") != pl.col("wm_yr_wk").shift(1))).alias(
                "_wk"
            ),
        )
    )
    lags = [
        pl.when(_within(k)).then(pl.col("_y").shift(k)).alias(lag_name(k)) for k in cfg.direct_lags
    ]
    # Two steps: window sums / shifted running sums first, then the statistics.
    sums = [*_window_sums("_p", 1, 28, "p4w", squares=False)]
    sums += _window_sums("_p", 1, 364, "pyr", squares=False)
    shifted, rolls = _rolling_stats(cfg.rolling_shift, cfg.windows)
    price = pl.col("sell_price")
    prices = [
        (_ratio(price, pl.when(_within(7)).then(price.shift(7))) - 1).alias("price_change_1w"),
        _ratio(price * 100 * pl.col("_p4w_n"), pl.col("_p4w_s")).alias("price_momentum_4w"),
        _ratio(price * 100 * pl.col("_pyr_n"), pl.col("_pyr_s")).alias("price_momentum_year"),
    ]
    calendar = [pl.lit(cal[c]).gather(pl.col("_di")).alias(c) for c in cal_cols]
    # Materialised step by step (eager): as one lazy query the optimiser merges the steps and
    # the grid pass cost about twice the CPU (measured).
    stage = (
        grid.collect()
        .with_columns(*lags, *sums, *shifted)
        .with_columns(*rolls, *prices, *calendar)
        .select(pl.exclude("^_.*$"), "_wk", "_gap", "_pos")
    )
    _check_grid(stage)
    stage = stage.drop("_gap", "_pos")
    logger.debug(
        "features: grid pass done at %.2fs (cpu %.2fs)",
        time.perf_counter() - t0,
        time.process_time(),
    )

    weekly = stage.filter(pl.col("_wk")).select("id", "store_id", "dept_id", "week_index", price)
    per_item = weekly.group_by("id").agg(
        pl.col("sell_price").drop_nulls().n_unique().cast(pl.Int16).alias("price_n_unique"),
        pl.col("sell_price").min().alias("price_min"),
        pl.col("sell_price").max().alias("price_max"),
        pl.col("sell_price").cast(pl.Float64).std().cast(pl.Float32).alias("price_std"),
        pl.col("sell_price").cast(pl.Float64).mean().alias("_price_mean_item"),
    )
    per_dept = weekly.group_by("store_id", "dept_id", "week_index").agg(
        pl.col("sell_price").cast(pl.Float64).mean().alias("_price_mean_dept")
    )
    enc = encoding_stats(stage, context.encoding_cutoff_d, cfg)
    logger.debug(
        "features: group stats done at %.2fs (cpu %.2fs)",
        time.perf_counter() - t0,
        time.process_time(),
    )

    out = _lookup(stage.lazy(), per_item, ["id"], [c for c in per_item.columns if c != "id"])
    n_weeks = int(cal["week_index"].max() or 0) + 1
    out = _lookup(
        out,
        per_dept,
        ["store_id", "dept_id", "week_index"],
        ["_price_mean_dept"],
        cardinality={"week_index": n_weeks},
    )
    for name, keys in cfg.encoding_keys.items():
        out = _lookup(out, enc[name], keys, [name])
    out = out.with_columns(
        _ratio(price, pl.col("_price_mean_item")).alias("price_rel_item"),
        _ratio(price, pl.col("_price_mean_dept")).alias("price_rel_dept"),
    )
    result = out.select(output_columns(cfg)).collect()
    logger.debug("features: %d rows built in %.2fs", result.height, time.perf_counter() - t0)
    return result


def categorical_columns() -> list[str]:
    """Model inputs that are categorical (Enum ids and small-int event codes)."""
    return [
        "item_id", "dept_id", "cat_id", "store_id", "state_id",
        "event_type_1_code", "event_name_1_code", "event_type_2_code",
    ]  # fmt: skip


def feature_columns(
    cfg: FeatureConfig | None = None, mode: str = "direct", *, include_ids: bool = True
) -> list[str]:
    """Model input columns of the table.

    Lags >= horizon, rolling windows ending at the horizon, calendar, events, SNAP, prices,
    target encodings; ``include_ids`` adds the categorical hierarchy ids (item, dept, cat,
    store, state). ``mode`` is ``"direct"``, the only mode of the table.
    """
    cfg = cfg or FeatureConfig()
    if mode != "direct":
        raise ValueError(f"mode must be 'direct', not {mode!r}")
    cols = [lag_name(k) for k in cfg.direct_lags]
    cols += [c for w in cfg.windows for c in roll_names(w, cfg.rolling_shift)]
    cols += [*CALENDAR_FEATURES, *EVENT_FEATURES, "snap", *PRICE_FEATURES, *encoding_names(cfg)]
    if include_ids:
        cols = ["item_id", "dept_id", "cat_id", "store_id", "state_id", *cols]
    return cols
