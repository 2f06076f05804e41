"""The per-store model family: routing, blending, the pyfunc round trip, and choices on folds."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from forecasting_assets.modeling import boosters, family, spec, train
from forecasting_assets.modeling.backtest import Fold
from forecasting_assets.modeling.predict import LightGBMDemandModel, write_model_artifacts
from forecasting_assets.modeling.recent import DAYS_AHEAD, RECENT_COLUMNS, with_recent_features
from forecasting_assets.modeling.selection import choose_blend

STORES = ("CA_1", "TX_1")


def _grid(n_per_store: int = 4, n_days: int = 90, seed: int = 0) -> pl.DataFrame:
    """Two stores with very different levels: TX_1 sells 10x more than CA_1."""
    rng = np.random.default_rng(seed)
    ids = [f"FOODS_1_{i:03d}_{s}" for s in STORES for i in range(n_per_store)]
    frames = []
    for sid in ids:
        level = 10.0 if sid.endswith("TX_1") else 1.0
        frames.append(
            pl.DataFrame(
                {
                    "id": sid,
                    "store_id": sid[-4:],
                    "d": np.arange(1, n_days + 1),
                    "sales": rng.poisson(level, n_days).astype(float),
                    "is_launched": True,
                    "x": rng.normal(size=n_days),
                }
            )
        )
    return pl.concat(frames).with_columns(
        pl.col("id").cast(pl.Enum(ids)),
        pl.col("store_id").cast(pl.Enum(list(STORES))),
        pl.col("d").cast(pl.Int16),
    )


def test_store_groups_give_big_stores_their_own_model() -> None:
    assert family.store_groups({"CA_1": 500, "TX_1": 20}, 100) == {"CA_1": "CA_1", "TX_1": "*"}
    assert family.store_groups({"CA_1": 500, "TX_1": 20}, 0) == {"CA_1": "*", "TX_1": "*"}


@pytest.fixture(scope="module")
def fitted() -> tuple[family.ModelFamily, pl.DataFrame]:
    frame = with_recent_features(_grid())
    specs = spec.model_specs(frame.schema, ["x", "store_id"], ["store_id"])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    groups = family.store_groups({"CA_1": 4, "TX_1": 4}, 4)
    mask = train.train_mask(frame, 1, 60)
    stores = frame["store_id"].cast(pl.String)
    members = {
        s: family.fit_model(
            frame, specs, params, {"direct": 8, "recursive": 8}, [mask & (stores == s)]
        )
        for s in STORES
    }
    fam = family.ModelFamily(members, family.for_every_part(groups, ("direct", "recursive")),
                             {"CA_1": 0.0, "TX_1": 1.0})  # fmt: skip
    return fam, frame


def test_part_params_reach_only_their_part() -> None:
    frame = with_recent_features(_grid())
    specs = spec.model_specs(frame.schema, ["x", "store_id"], ["store_id"])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    mask, rounds = train.train_mask(frame, 1, 60), {"direct": 8, "recursive": 8}
    same = family.fit_model(frame, specs, params, rounds, [mask])
    own = family.fit_model(frame, specs, params, rounds, [mask],
                           {"recursive": {"tweedie_variance_power": 1.7}})  # fmt: skip
    power = {k: b.params["tweedie_variance_power"] for k, (b,) in own.boosters.items()}
    assert power == {"direct": 1.1, "recursive": 1.7}
    rows = frame.filter(pl.col("d") == 61)
    direct, recursive = (
        [boosters.predict_booster(m.boosters[k], rows, m.specs[k]) for m in (same, own)]
        for k in ("direct", "recursive")
    )
    np.testing.assert_array_equal(direct[0], direct[1])
    assert not np.allclose(recursive[0], recursive[1])


def test_a_seed_bag_predicts_the_mean_of_its_boosters(tmp_path: Path) -> None:
    """Each booster of a bag trains on its own sample with its own seed; the part predicts their
    mean, one-step, recursively and after the pyfunc round trip."""
    frame = with_recent_features(_grid())
    specs = spec.model_specs(frame.schema, ["x", "store_id"], ["store_id"])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, seed=7, num_threads=1)
    masks = [train.train_mask(frame, 1, 60, 300, seed) for seed in (7, 8)]
    rounds = {"direct": 8, "recursive": 8}
    bag = family.fit_model(frame, specs, params, rounds, masks)
    alone = [family.fit_model(frame, specs, {**params, "seed": s}, rounds, [m])
             for s, m in zip((7, 8), masks, strict=True)]  # fmt: skip
    assert [b.params["seed"] for b in bag.boosters["direct"]] == [7, 8]
    rows = frame.filter(pl.col("d").is_between(61, 74)).sort("id", "d")
    one_step = [boosters.predict_booster(m.boosters["direct"], rows, m.specs["direct"])
                for m in alone]  # fmt: skip
    assert not np.allclose(*one_step)
    got = boosters.predict_booster(bag.boosters["direct"], rows, bag.specs["direct"])
    np.testing.assert_allclose(got, np.mean(one_step, axis=0))
    hist = train.history_matrix(frame, 60)
    routing = family.for_every_part(dict.fromkeys(STORES, family.GLOBAL), ("direct", "recursive"))
    fam = family.ModelFamily({family.GLOBAL: bag}, routing, {}, 0.5)
    arts = write_model_artifacts(tmp_path, fam, {"quantiles": []})
    assert {"booster_global_direct", "booster_global_direct_seed1"} <= set(arts)
    loaded = LightGBMDemandModel()
    loaded.load_context(SimpleNamespace(artifacts=arts))
    np.testing.assert_allclose(loaded.forecast(rows, hist), fam.forecast(rows, hist))
    # The recursion feeds the bag's mean back: its first day is the mean of the boosters' first.
    first = rows.filter(pl.col("d") == 61)
    day1 = [boosters.recursive_predict(m.boosters["recursive"], m.specs["recursive"], first,
                                       hist) for m in alone]  # fmt: skip
    np.testing.assert_allclose(
        boosters.recursive_predict(bag.boosters["recursive"], bag.specs["recursive"], first, hist),
        np.mean(day1, axis=0),
    )


def test_family_routes_each_store_to_its_own_member(
    fitted: tuple[family.ModelFamily, pl.DataFrame],
) -> None:
    fam, frame = fitted
    assert set(fam.members) == set(STORES)
    rows = frame.filter(pl.col("d") == 61)
    pred = fam.predict(rows)
    tx = rows["store_id"].cast(pl.String) == "TX_1"
    # Each store's own model learnt its level: TX_1 forecasts are ~10x CA_1's.
    assert pred[tx.to_numpy()].mean() > 4 * pred[~tx.to_numpy()].mean()
    # Store weights: CA_1 uses only the direct part, TX_1 only the recursive part.
    parts = fam.predict_parts(rows)
    np.testing.assert_allclose(pred[~tx.to_numpy()], parts["direct"][~tx.to_numpy()])
    np.testing.assert_allclose(pred[tx.to_numpy()], parts["recursive"][tx.to_numpy()])
    ca_only = fam.members["CA_1"].boosters["direct"]
    spec = fam.members["CA_1"].specs["direct"]
    np.testing.assert_allclose(
        parts["direct"][~tx.to_numpy()],
        boosters.predict_booster(ca_only, rows.filter(~tx), spec),
    )


def test_family_horizon_forecast_matches_member_forecasts(
    fitted: tuple[family.ModelFamily, pl.DataFrame],
) -> None:
    fam, frame = fitted
    rows = frame.filter(pl.col("d").is_between(61, 74)).sort("id", "d")
    hist = train.history_matrix(frame, 60)
    got = fam.forecast(rows, hist)
    tx_rows = (rows["store_id"].cast(pl.String) == "TX_1").to_numpy()
    tx_series = np.repeat([False] * 4 + [True] * 4, 1)
    member = fam.members["TX_1"].forecast_parts(rows.filter(pl.Series(tx_rows)), hist[tx_series])
    np.testing.assert_allclose(got[tx_rows], member["recursive"])


def test_pyfunc_artifacts_round_trip(
    fitted: tuple[family.ModelFamily, pl.DataFrame], tmp_path: Path
) -> None:
    fam, frame = fitted
    arts = write_model_artifacts(tmp_path, fam, {"quantiles": []})
    assert {"booster_CA_1_direct", "booster_TX_1_recursive", "spec", "calibration"} <= set(arts)
    loaded = LightGBMDemandModel()
    loaded.load_context(SimpleNamespace(artifacts=arts))
    rows = frame.filter(pl.col("d") == 65)
    np.testing.assert_allclose(loaded.predict(None, rows.to_pandas()), fam.predict(rows))
    assert loaded.model is not None and loaded.model.recursive_weight == fam.recursive_weight


def test_each_part_is_routed_by_its_own_grouping(
    fitted: tuple[family.ModelFamily, pl.DataFrame], tmp_path: Path
) -> None:
    """A global direct part with per-store recursive parts: each part of a series comes from the
    member serving that part in its store, also after the pyfunc round trip."""
    fam, frame = fitted
    specs = spec.model_specs(frame.schema, ["x", "store_id"], ["store_id"])
    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    direct = family.fit_model(frame, {"direct": specs["direct"]}, params, {"direct": 8},
                              [train.train_mask(frame, 1, 60)])  # fmt: skip
    own = {s: fam.members[s] for s in STORES}
    members = {
        family.GLOBAL: direct,
        **{s: family.DemandModel({"recursive": m.boosters["recursive"]},
                                 {"recursive": m.specs["recursive"]}) for s, m in own.items()},
    }  # fmt: skip
    routing = {"direct": dict.fromkeys(STORES, family.GLOBAL), "recursive": {s: s for s in STORES}}
    mixed = family.ModelFamily(members, routing, fam.recursive_weight)
    assert mixed.parts == ["direct", "recursive"]
    rows = frame.filter(pl.col("d").is_between(61, 74)).sort("id", "d")
    hist = train.history_matrix(frame, 60)
    parts = mixed.forecast_parts(rows, hist)
    np.testing.assert_allclose(parts["direct"], direct.forecast_parts(rows, hist)["direct"])
    tx = (rows["store_id"].cast(pl.String) == "TX_1").to_numpy()
    tx_series = np.repeat([False, True], 4)
    for store, sel, series in (("TX_1", tx, tx_series), ("CA_1", ~tx, ~tx_series)):
        alone = own[store].forecast_parts(rows.filter(pl.Series(sel)), hist[series], ["recursive"])
        np.testing.assert_allclose(parts["recursive"][sel], alone["recursive"])
    loaded = LightGBMDemandModel()
    loaded.load_context(SimpleNamespace(artifacts=write_model_artifacts(tmp_path, mixed, {})))
    np.testing.assert_allclose(loaded.forecast(rows, hist), mixed.forecast(rows, hist))
    day = frame.filter(pl.col("d") == 61)
    np.testing.assert_allclose(loaded.predict(None, day.to_pandas()), mixed.predict(day))


def test_a_model_saved_with_one_routing_for_every_part_still_loads(
    fitted: tuple[family.ModelFamily, pl.DataFrame], tmp_path: Path
) -> None:
    """Models registered before the per-part grouping stored one store -> group map."""
    fam, frame = fitted
    arts = write_model_artifacts(tmp_path, fam, {})
    meta = json.loads(Path(arts["spec"]).read_text())
    meta["store_group"] = {s: s for s in STORES}
    Path(arts["spec"]).write_text(json.dumps(meta))
    loaded = LightGBMDemandModel()
    loaded.load_context(SimpleNamespace(artifacts=arts))
    assert loaded.model is not None and loaded.model.store_group == fam.store_group
    rows = frame.filter(pl.col("d") == 65)
    np.testing.assert_allclose(loaded.predict(None, rows.to_pandas()), fam.predict(rows))


def test_a_direct_part_that_reads_the_origin_sees_every_day_from_the_origin(
    tmp_path: Path,
) -> None:
    """Training rows are seen 1..horizon days after their origin, with the recent means known
    then; a horizon forecast gives every day the origin's means and its days ahead; a one-step
    prediction is the first day ahead, also after the pyfunc round trip."""
    frame = with_recent_features(_grid())
    specs = spec.model_specs(frame.schema, ["x", "store_id"], ["store_id"], (spec.DIRECT,), 14)
    direct = specs[spec.DIRECT]
    col = direct.feature_columns.index
    assert direct.reads_origin and DAYS_AHEAD not in spec.input_spec(specs).feature_columns
    mask = train.train_mask(frame, 30, 60)
    x = boosters.training_matrix(frame, direct, mask, seed=1)
    ahead = x[:, col(DAYS_AHEAD)].astype(int)
    assert set(ahead.tolist()) == set(range(1, 15))
    rows = frame.filter(mask)
    for i in (0, 17, 200):  # the week before the origin, read off the frame's own sales
        sid, d = rows["id"][i], int(rows["d"][i])
        week = frame.filter((pl.col("id") == sid)
                            & pl.col("d").is_between(d - ahead[i] - 6, d - ahead[i]))  # fmt: skip
        assert x[i, col("recent_mean_7")] == pytest.approx(week["sales"].mean())

    params = boosters.lgb_params({"min_data_in_leaf": 2, "num_leaves": 4}, num_threads=1)
    member = family.fit_model(frame, specs, params, {spec.DIRECT: 8}, [mask])
    fam = family.ModelFamily(
        {family.GLOBAL: member},
        family.for_every_part(dict.fromkeys(STORES, family.GLOBAL), member.boosters), {},
    )  # fmt: skip
    horizon = frame.filter(pl.col("d").is_between(61, 74)).sort("id", "d")
    hist = train.history_matrix(frame, 60)
    got = fam.forecast(horizon, hist)
    at_origin = frame.filter(pl.col("d") == 61).select("id", *RECENT_COLUMNS)
    by_hand = (
        horizon.drop(RECENT_COLUMNS)
        .join(at_origin, on="id")
        .with_columns((pl.col("d") - 60).cast(pl.Float32).alias(DAYS_AHEAD))
    )
    np.testing.assert_allclose(got, fam.predict(by_hand.sort("id", "d")), rtol=1e-6)
    assert len(np.unique(got.reshape(len(hist), 14)[0])) > 1  # the days ahead matter
    first = horizon.filter(pl.col("d") == 61)
    np.testing.assert_allclose(fam.predict(first), got.reshape(len(hist), 14)[:, 0], rtol=1e-6)
    loaded = LightGBMDemandModel()
    loaded.load_context(SimpleNamespace(artifacts=write_model_artifacts(tmp_path, fam, {})))
    np.testing.assert_allclose(loaded.forecast(horizon, hist), got)
    pandas_rows = fam.input_spec.input_frame(first)
    np.testing.assert_allclose(loaded.predict(None, pandas_rows), fam.predict(first))


class _Scorer:
    """Squared error against a known truth, as a stand-in for the WRMSSE ratio."""

    def __init__(self, truth: dict[int, np.ndarray]) -> None:
        self.truth = truth

    def mean_ratio(self, forecasts: dict[int, np.ndarray]) -> float:
        return float(np.mean([np.mean((forecasts[k] - self.truth[k]) ** 2) for k in forecasts]))


def _outputs(truth: dict[int, np.ndarray]) -> list[train.FoldOutput]:
    """Direct part right in store A, recursive right in store B; more trees are better."""
    outs = []
    for k, y in truth.items():
        d = {t: y + np.r_[0, 0, 5, 5][:, None] + 3 / t for t in (5, 10)}
        r = {t: y + np.r_[5, 5, 0, 0][:, None] + 3 / t for t in (5, 10)}
        outs.append(train.FoldOutput(Fold(k, 100 * k, 3), {"direct": d, "recursive": r}, 0, 0.0))
    return outs


def test_blend_choices_are_made_on_the_mean_over_folds() -> None:
    rng = np.random.default_rng(0)
    truth = {k: rng.poisson(3, (4, 3)).astype(float) for k in (1, 2, 3)}
    stores = np.array(["A", "A", "B", "B"])
    one = choose_blend(_outputs(truth), _Scorer(truth), stores)  # type: ignore[arg-type]
    assert one.rounds == {"direct": 10, "recursive": 10}
    assert one.recursive_weight == {"A": 0.5, "B": 0.5}
    per = choose_blend(_outputs(truth), _Scorer(truth), stores, per_store=True)  # type: ignore[arg-type]
    assert per.recursive_weight == {"A": 0.0, "B": 1.0}
    assert per.mean_ratio < one.mean_ratio
