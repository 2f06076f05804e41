"""Small random frames in the ``sales_long`` layout, for tests and quick experiments."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

_EVENTS = [("SuperBowl", "Sporting"), ("Easter", "Cultural"), ("Christmas", "National")]


def make_sales_long(
    n_stores: int = 2,
    items_per_store: int = 4,
    n_days: int = 120,
    horizon: int = 28,
    seed: int = 0,
) -> pl.DataFrame:
    """A ``sales_long``-shaped frame (CONTRACTS.md dtypes), sorted by series then ``d``.

    Series get random launch days (leading zeros, ``is_launched`` False before the first sale),
    intermittent Poisson sales, weekly prices with gaps (null = not on sale) and a few events.
    """
    rng = np.random.default_rng(seed)
    states = ["CA", "TX", "WI"]
    stores = [f"{states[s % 3]}_{s // 3 + 1}" for s in range(n_stores)]
    depts = ["FOODS_1", "HOBBIES_1"]
    items = [f"{depts[i % 2]}_{i + 1:03d}" for i in range(items_per_store)]
    total = n_days + horizon
    start = dt.date(2011, 1, 29)
    dates = [start + dt.timedelta(days=i) for i in range(total)]
    d = np.arange(1, total + 1)
    week = 11101 + (d - 1) // 7
    ev_name: list[str | None] = [None] * total
    ev_type: list[str | None] = [None] * total
    for day in rng.choice(total, size=max(1, total // 30), replace=False):
        name, kind = _EVENTS[int(rng.integers(len(_EVENTS)))]
        ev_name[day], ev_type[day] = name, kind
    ev2_name: list[str | None] = [None] * total
    ev2_type: list[str | None] = [None] * total
    ev2_name[int(rng.integers(total))], ev2_type[int(rng.integers(total))] = "Unlisted", "Other"
    snap_by_state = {s: rng.integers(0, 2, total) for s in states}

    frames = []
    for store in stores:
        state = store.split("_")[0]
        for item in items:
            launch = int(rng.integers(0, n_days // 2)) if rng.random() < 0.6 else 0
            lam = float(rng.uniform(0.2, 6.0))
            sales = rng.poisson(lam, total).astype(np.int64)
            sales[:launch] = 0
            sales[launch] = max(1, sales[launch])
            n_weeks = int(week[-1] - week[0] + 1)
            wprice = np.round(rng.uniform(1.0, 9.0) * rng.choice([1.0, 0.9, 1.1], n_weeks), 2)
            on_sale = rng.random(n_weeks) > 0.1
            on_sale[: max(0, launch // 7 - 1)] = False
            price = np.where(on_sale, wprice, np.nan)[week - week[0]]
            frames.append(
                pl.DataFrame(
                    {
                        "id": f"{item}_{store}",
                        "item_id": item,
                        "dept_id": item.rsplit("_", 1)[0],
                        "cat_id": item.split("_")[0],
                        "store_id": store,
                        "state_id": state,
                        "d": d,
                        "date": dates,
                        "wm_yr_wk": week,
                        "wday": ((d - 1) % 7) + 1,
                        "month": [x.month for x in dates],
                        "year": [x.year for x in dates],
                        "event_name_1": ev_name,
                        "event_type_1": ev_type,
                        "event_name_2": ev2_name,
                        "event_type_2": ev2_type,
                        "snap": snap_by_state[state],
                        "sell_price": price,
                        "sales": sales,
                        "is_launched": np.arange(total) >= launch,
                    },
                    nan_to_null=True,
                )
            )
    df = pl.concat(frames)
    ids = {c: pl.Enum(df[c].unique(maintain_order=True).to_list()) for c in
           ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")}  # fmt: skip
    return df.with_columns(
        *[pl.col(c).cast(t) for c, t in ids.items()],
        pl.col("d").cast(pl.Int16),
        pl.col("wm_yr_wk").cast(pl.Int16),
        pl.col("wday").cast(pl.Int8),
        pl.col("month").cast(pl.Int8),
        pl.col("year").cast(pl.Int16),
        pl.col("snap").cast(pl.Int8),
        pl.col("sell_price").cast(pl.Float32),
        pl.when(pl.col("d") <= n_days).then(pl.col("sales")).cast(pl.Int32).alias("sales"),
    )
