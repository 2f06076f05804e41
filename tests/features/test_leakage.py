"""No direct-model feature for days origin+1..origin+28 reads sales after the origin."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from forecasting_assets.features import (
    FeatureConfig,
    build_features,
    feature_columns,
    feature_context,
)
from forecasting_assets.features.columns import lag_name

SalesLong = Callable[..., pl.DataFrame]

CFG = FeatureConfig()


def _perturb_after(sl: pl.DataFrame, origin: int, seed: int) -> pl.DataFrame:
    """Replace every known sale after ``origin`` by random values; recompute ``is_launched``."""
    rng = np.random.default_rng(seed)
    noise = pl.Series("noise", rng.integers(0, 50, sl.height), dtype=pl.Int32)
    out = sl.with_columns(
        pl.when((pl.col("d") > origin) & pl.col("sales").is_not_null())
        .then(noise)
        .otherwise(pl.col("sales"))
        .alias("sales")
    )
    return out.with_columns(
        ((pl.col("sales").fill_null(0) > 0).cast(pl.Int32).cum_sum().over("id") > 0).alias(
            "is_launched"
        )
    )


def _direct_window(sl: pl.DataFrame, origin: int, cfg: FeatureConfig) -> pl.DataFrame:
    ctx = feature_context(sl, cfg, encoding_cutoff_d=origin)
    table = build_features(sl, cfg, context=ctx)
    cols = ["id", "d", *feature_columns(cfg, "direct")]
    return table.filter(pl.col("d").is_between(origin + 1, origin + cfg.horizon)).select(cols)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), back=st.integers(0, 40))
def test_direct_features_ignore_sales_after_origin(
    make_sales_long: SalesLong, seed: int, back: int
) -> None:
    sl = make_sales_long(n_stores=2, items_per_store=3, n_days=150, seed=seed)
    origin = 150 - back  # origins up to the last history day
    perturbed = _perturb_after(sl, origin, seed + 1)
    assert not perturbed["sales"].equals(sl["sales"]) or back == 0
    assert_frame_equal(_direct_window(sl, origin, CFG), _direct_window(perturbed, origin, CFG))


def test_perturbation_is_visible_after_the_horizon(make_sales_long: SalesLong) -> None:
    """The test above could fail: lag 28 of the days after the horizon reads perturbed days."""
    sl = make_sales_long(n_stores=1, items_per_store=4, n_days=150, seed=3)
    origin = 110
    perturbed = _perturb_after(sl, origin, 9)
    window = pl.col("d").is_between(origin + 29, origin + 40)
    a = build_features(sl).filter(window)[lag_name(28)]
    b = build_features(perturbed).filter(window)[lag_name(28)]
    assert not a.equals(b)


def test_encodings_respect_cutoff(make_sales_long: SalesLong) -> None:
    sl = make_sales_long(n_stores=2, items_per_store=3, n_days=150, seed=12)
    origin = 100
    base = _direct_window(sl, origin, CFG).select("te_item_store", "te_store_dept")
    # Changing sales after the cutoff changes nothing; changing them before it does.
    after = _direct_window(_perturb_after(sl, origin, 1), origin, CFG)
    assert_frame_equal(base, after.select("te_item_store", "te_store_dept"))
    before = _perturb_after(sl, origin - 30, 1)
    changed = _direct_window(before, origin, CFG).select("te_item_store", "te_store_dept")
    assert not changed.equals(base)
