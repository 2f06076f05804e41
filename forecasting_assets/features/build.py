"""The feature table from ``sales_long``: reads the input, runs the grid pass and the group
statistics, and assembles the columns in :func:`~forecasting_assets.features.columns.output_columns`
order (pure polars).

The input is sorted by series then ``d`` with one row per series and day (history + horizon),
days contiguous within a series: windows are one pass over that grid
(:mod:`~forecasting_assets.features.windows`), group statistics dense gathers
(:mod:`~forecasting_assets.features.lookup`), calendar features one row per day
(:mod:`~forecasting_assets.features.calendar`).

Leakage rules (the direct model forecasts days ``origin+1 .. origin+horizon``):

* sales lags are all ``>= horizon``; rolling windows end at lag ``rolling_shift >= horizon``;
* target encodings use only days ``d <= cutoff_d``
  (:func:`~forecasting_assets.features.encodings.add_target_encodings`).

Every group statistic is keyed within a store (item×store, store×dept, store×dept×week), so
building the table store by store and concatenating gives exactly the whole-table result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import polars as pl

from forecasting_assets.features.calendar import calendar_features
from forecasting_assets.features.columns import INPUT_COLS, TARGET, lag_name, output_columns
from forecasting_assets.features.config import FeatureConfig
from forecasting_assets.features.encodings import encoding_stats
from forecasting_assets.features.lookup import lookup
from forecasting_assets.features.windows import (
    check_grid,
    cumulative,
    ratio,
    rolling_stats,
    series_position,
    window_sums,
    within,
)
from forecasting_assets.m5.transform import last_history_day

logger = logging.getLogger(__name__)


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
        .with_columns(series_position(), _y=y, _cents=cents, _di=day_idx)
        .with_columns(
            # Global running sums (exact integers) for the rolling windows, see rolling_stats.
            y0.cum_sum().alias("_Cs"),
            pl.col("_y").is_not_null().cast(pl.Int64).cum_sum().alias("_Cn"),
            (y0 * y0).cum_sum().alias("_Cq"),
            *cumulative("_p", pl.col("_cents"), squares=False),
            # rows whose previous row is the same series but not the previous day
            ((pl.col("_pos") > 0) & (pl.col("d") - pl.col("d").shift(1) != 1)).alias("_gap"),
            # first row of each series-week: weekly price statistics use one price per week
            ((pl.col("_pos") == 0) | (pl.col("wm_yr_wk") != pl.col("wm_yr_wk").shift(1))).alias(
                "_wk"
            ),
        )
    )
    lags = [
        pl.when(within(k)).then(pl.col("_y").shift(k)).alias(lag_name(k)) for k in cfg.direct_lags
    ]
    # Two steps: window sums / shifted running sums first, then the statistics.
    sums = [*window_sums("_p", 1, 28, "p4w", squares=False)]
    sums += window_sums("_p", 1, 364, "pyr", squares=False)
    shifted, rolls = rolling_stats(cfg.rolling_shift, cfg.windows)
    price = pl.col("sell_price")
    prices = [
        (ratio(price, pl.when(within(7)).then(price.shift(7))) - 1).alias("price_change_1w"),
        ratio(price * 100 * pl.col("_p4w_n"), pl.col("_p4w_s")).alias("price_momentum_4w"),
        ratio(price * 100 * pl.col("_pyr_n"), pl.col("_pyr_s")).alias("price_momentum_year"),
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
    check_grid(stage)
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

    out = lookup(stage.lazy(), per_item, ["id"], [c for c in per_item.columns if c != "id"])
    n_weeks = int(cal["week_index"].max() or 0) + 1
    out = lookup(
        out,
        per_dept,
        ["store_id", "dept_id", "week_index"],
        ["_price_mean_dept"],
        cardinality={"week_index": n_weeks},
    )
    for name, keys in cfg.encoding_keys.items():
        out = lookup(out, enc[name], keys, [name])
    out = out.with_columns(
        ratio(price, pl.col("_price_mean_item")).alias("price_rel_item"),
        ratio(price, pl.col("_price_mean_dept")).alias("price_rel_dept"),
    )
    result = out.select(output_columns(cfg)).collect()
    logger.debug("features: %d rows built in %.2fs", result.height, time.perf_counter() - t0)
    return result
