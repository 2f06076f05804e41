"""Promotion gate and MLflow integration on a real SQLite MLflow store in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import polars as pl
import pytest

from forecasting_assets.contracts import CHAMPION_ALIAS, M5_LEVELS, MODEL_NAME
from forecasting_assets.defs.mlflow_resource import MLflowResource
from forecasting_assets.defs.resources import PipelineHome
from forecasting_assets.modeling import registry
from forecasting_assets.modeling.batch import run_batch_forecast
from forecasting_assets.modeling.config import TrainingSettings
from forecasting_assets.modeling.inputs import ModelInputs
from forecasting_assets.modeling.recent import (
    CONTEXT_DAYS,
    DAYS_AHEAD,
    RECENT_COLUMNS,
    with_recent_features,
)
from forecasting_assets.modeling.registry import ChampionInfo, decide
from forecasting_assets.modeling.train import history_matrix
from forecasting_assets.modeling.training import TrainingResult, run_training

FAST = {"min_data_in_leaf": 5, "num_leaves": 7, "max_bin": 31}

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------ pure gate


def test_gate_promotes_without_champion() -> None:
    assert decide(0.8, "dv", "f", None) == registry.Decision(True, "no champion yet")


def test_gate_keeps_a_better_champion_on_same_data() -> None:
    champ = ChampionInfo("3", 0.70, "dv", "f")
    d = decide(0.75, "dv", "f", champ)
    assert not d.promote and "does not beat champion v3" in d.reason
    assert not decide(0.70, "dv", "f", champ).promote  # a tie does not move the alias
    assert decide(0.69, "dv", "f", champ).promote


def test_gate_promotes_when_champion_scored_on_other_data() -> None:
    d = decide(0.9, "dv-new", "f", ChampionInfo("3", 0.5, "dv-old", "f"))
    assert d.promote and "not comparable" in d.reason
    assert decide(0.9, "dv", "f-new", ChampionInfo("3", 0.5, "dv", "f")).promote


def test_gate_rejects_non_finite_scores() -> None:
    assert not decide(float("nan"), "dv", "f", None).promote


# ------------------------------------------------------------------ MLflow store


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, make_sales_long: Callable[..., pl.DataFrame]
) -> Iterator[dict[str, Any]]:
    """Materialize baselines -> demand_model -> batch_forecasts (+ checks) through Dagster once."""
    import dagster as dg

    from forecasting_assets.defs.assets import modeling as assets
    from forecasting_assets.defs.io_manager import AtomicParquetIOManager
    from forecasting_assets.features.build import build_features

    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FORECASTING_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    sl = make_sales_long(n_stores=2, items_per_store=5, n_days=150, seed=4)
    built = build_features(sl)
    feats = built.collect() if isinstance(built, pl.LazyFrame) else built
    if "wday" not in feats.columns:  # encoder keys, until the features table carries them
        feats = feats.with_columns(wday=((pl.col("d") - 1) % 7 + 1).cast(pl.Int8))
    inputs = ModelInputs()
    cols, cats, encoder, keys = (inputs.feature_columns, inputs.categorical_columns,
                                 inputs.encode, inputs.encoding_keys)  # fmt: skip
    res = MLflowResource()

    @dg.asset(name="sales_long")
    def sales_long_stub() -> pl.DataFrame:
        return sl

    @dg.asset(name="features")
    def features_stub() -> pl.DataFrame:
        return feats

    config = assets.DemandModelConfig(
        train_start_d=1, num_boost_round=15, num_threads=1, extra_params_json=json.dumps(FAST)
    )
    result = dg.materialize(
        [sales_long_stub, features_stub, *assets.MODELING_ASSETS, *assets.MODELING_CHECKS],
        resources={
            "io_manager": AtomicParquetIOManager(base_dir=str(home / "assets")),
            "mlflow": res,
            "home": PipelineHome(),
        },
        run_config=dg.RunConfig({"demand_model": config}),
    )
    ctx = {"home": home, "sl": sl, "feats": feats, "cols": cols, "cats": cats, "encoder": encoder,
           "keys": keys, "res": res, "exports": home / "exports", "result": result}  # fmt: skip

    def train_once(rounds: int, lr: float = 0.1, encoder: Any = encoder) -> TrainingResult:
        settings = TrainingSettings(train_start_d=1, num_boost_round=rounds, num_threads=1,
                                    params={**FAST, "learning_rate": lr})  # fmt: skip
        return run_training(
            feats,
            sl,
            cols,
            cats,
            settings,
            res,
            ctx["exports"],
            encoder=encoder,
            extra_columns=keys,
        )

    ctx["train"] = train_once
    ctx["first"] = TrainingResult(**result.output_for_node("demand_model"))
    yield ctx
    mp.undo()


def test_dagster_materialization_and_checks(store: dict[str, Any]) -> None:
    result = store["result"]
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert set(checks) == {
        "demand_model_beats_seasonal_naive", "demand_model_predictions_valid", "forecasts_complete",
        "forecasts_finite_non_negative", "forecasts_interval_order", "forecasts_totals_plausible",
    }  # fmt: skip
    for name in ("demand_model_predictions_valid", "forecasts_complete", "forecasts_finite_non_negative",
                 "forecasts_interval_order"):  # fmt: skip
        assert checks[name], name
    assert (store["home"] / "assets" / "demand_model.json").exists()
    assert (store["home"] / "assets" / "batch_forecasts.parquet").exists()
    baselines = result.output_for_node("baselines")
    assert {"naive", "seasonal_naive", "moving_average", "ses", "croston_sba", "tsb"} == set(
        baselines["model"]
    )


def _champion_version(res: MLflowResource) -> str:
    return str(res.client().get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version)


def test_first_training_is_logged_registered_and_promoted(store: dict[str, Any]) -> None:
    first: TrainingResult = store["first"]
    res: MLflowResource = store["res"]
    assert res.resolved_uri() == f"sqlite:///{store['home'] / 'mlflow.db'}"
    assert first.promoted and first.model_version == "1" and _champion_version(res) == "1"
    run = res.client().get_run(first.run_id)
    assert run.info.status == "FINISHED" and mlflow.active_run() is None
    for key in ("wrmsse", "wrmsse_seasonal_naive", "wrmsse_ratio", "mae", "rmse", "bias"):
        assert np.isfinite(run.data.metrics[key])
    for key in ("train_start_d", "train_end_d", "horizon", "feature_columns"):
        assert key in run.data.params
    from forecasting_assets.defs.assets.modeling import DemandModelConfig

    part_params = DemandModelConfig().to_settings().part_params  # the recursive part's own
    assert json.loads(run.data.params["part_params"]) == part_params
    assert run.data.tags["data_version"] == first.data_version
    arts = {a.path for a in res.client().list_artifacts(first.run_id)}
    assert {"feature_importance.json", "quantile_calibration.json"} <= arts
    bm = pl.read_parquet(store["exports"] / "backtest_metrics.parquet")
    assert {"lightgbm", "seasonal_naive", "naive", "moving_average", "ses", "croston_sba"} <= set(
        bm["model"]
    )
    assert set(bm["level"]) >= {"all", "total", "item_store"} and bm["fold"].max() == 4
    assert {"lightgbm_direct", "lightgbm_recursive"} <= set(bm["model"])  # each part, scored too
    # The headline is the mean over the folds of the ratio to seasonal naive, with its spread.
    assert len(first.fold_ratios) == 4
    assert first.wrmsse_ratio == pytest.approx(np.mean(list(first.fold_ratios.values())))
    assert first.wrmsse_ratio_min <= first.wrmsse_ratio <= first.wrmsse_ratio_max
    assert run.data.metrics["wrmsse_ratio"] == pytest.approx(first.wrmsse_ratio)
    # The same blend with its choices made on the other folds only: scored, logged and exported.
    assert set(first.out_of_fold_ratios) == set(first.fold_ratios)
    assert first.wrmsse_ratio_out_of_fold == pytest.approx(
        np.mean(list(first.out_of_fold_ratios.values()))
    )
    assert run.data.metrics["wrmsse_ratio_out_of_fold"] == pytest.approx(
        first.wrmsse_ratio_out_of_fold
    )
    assert "lightgbm_out_of_fold" in set(bm["model"])
    assert set(first.rounds) == {"direct", "recursive"}
    assert all(0.0 <= w <= 1.0 for w in first.recursive_weight.values())
    # Quantiles scored like the M5 uncertainty track, each fold calibrated on the others.
    assert np.isfinite(first.wspl_ratio) and first.wspl_ratio <= first.wspl_ratio_max
    assert run.data.metrics["wspl_ratio"] == pytest.approx(first.wspl_ratio)
    assert {"wspl_lightgbm_fold1", "wspl_seasonal_naive_fold1", "wspl_naive_spread_fold1"} <= set(
        run.data.metrics
    )
    bf = pl.read_parquet(store["exports"] / "backtest_forecasts.parquet")
    assert bf.columns == ["id", "fold", "d", "forecast", "actual"]
    assert bf.height == 10 * 28 * 4 and bf["fold"].n_unique() == 4
    sl = store["sl"].filter(pl.col("d") <= 150).select("id", "d", pl.col("sales").cast(pl.Float32))
    joined = bf.join(sl.with_columns(pl.col("d").cast(pl.Int16)), on=["id", "d"])
    assert joined.height == bf.height and (joined["actual"] == joined["sales"]).all()
    cov = pl.read_parquet(store["exports"] / "interval_coverage.parquet")
    assert {"model", "fold", "quantile", "coverage"} <= set(cov.columns)
    # The pyfunc model follows the contract: features in, non-negative point forecasts out.
    from forecasting_assets.modeling.predict import LightGBMDemandModel

    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}")
    inner = model.unwrap_python_model()
    assert isinstance(inner, LightGBMDemandModel) and inner.model is not None
    assert list(inner.model.members) == ["*"]  # small stores: one global model
    assert set(inner.model.members["*"].boosters) == {"direct", "recursive"}
    assert set(RECENT_COLUMNS) <= set(inner.input_columns)
    grid = with_recent_features(store["feats"].sort("id", "d"))
    rows = grid.filter(pl.col("d") > 150).head(7)
    pred = model.predict(inner.model.input_spec.input_frame(rows))
    assert len(pred) == 7 and (np.asarray(pred) >= 0).all()
    np.testing.assert_allclose(pred, inner.model.predict(rows))


def test_worse_model_does_not_move_the_alias(store: dict[str, Any]) -> None:
    backtest_files = ("backtest_metrics.parquet", "backtest_forecasts.parquet",
                      "interval_coverage.parquet")  # fmt: skip
    before = {name: (store["exports"] / name).read_bytes() for name in backtest_files}
    worse = store["train"](1, lr=0.001)
    assert worse.wrmsse > store["first"].wrmsse
    assert not worse.promoted and "does not beat" in worse.promotion_reason
    assert _champion_version(store["res"]) == store["first"].model_version
    mv = store["res"].client().get_model_version(MODEL_NAME, worse.model_version)
    assert mv.tags["promotion"] == "rejected"
    # The exports still describe the champion; the rejected model's backtest is in its run.
    assert {name: (store["exports"] / name).read_bytes() for name in backtest_files} == before
    arts = {a.path for a in store["res"].client().list_artifacts(worse.run_id)}
    assert {"backtest_metrics.parquet", "interval_coverage.parquet"} <= arts


def test_failed_training_leaves_the_champion(store: dict[str, Any]) -> None:
    before = _champion_version(store["res"])
    calls: list[int] = []

    def broken(frame: pl.DataFrame, cutoff: int) -> pl.DataFrame:
        calls.append(cutoff)
        if len(calls) == 2:
            raise RuntimeError("boom in fold 2")
        return store["encoder"](frame, cutoff)

    with pytest.raises(RuntimeError, match="boom"):
        store["train"](15, encoder=broken)
    assert _champion_version(store["res"]) == before
    assert mlflow.active_run() is None
    runs = (
        store["res"]
        .client()
        .search_runs([store["res"].setup()], order_by=["attributes.start_time DESC"], max_results=1)
    )
    assert runs[0].info.status == "FAILED"


def test_resource_ends_run_when_body_raises(store: dict[str, Any]) -> None:
    res: MLflowResource = store["res"]
    with pytest.raises(ValueError), res.start_run(run_name="x") as run:
        raise ValueError("x")
    assert mlflow.active_run() is None
    assert res.client().get_run(run.info.run_id).info.status == "FAILED"


def test_batch_forecast_exports_and_failure_keeps_previous(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from forecasting_assets.modeling import batch
    from forecasting_assets.modeling.forecast import FORECAST_COLUMNS

    exports: Path = store["exports"]
    fc = pl.read_parquet(exports / "forecasts.parquet")  # written by the batch_forecasts asset
    assert fc.equals(store["result"].output_for_node("batch_forecasts"))
    assert tuple(fc.columns) == FORECAST_COLUMNS
    assert fc.height == 10 * 28 and fc.group_by("id").len()["len"].unique().to_list() == [28]
    assert fc["model_version"].unique().to_list() == [_champion_version(store["res"])]
    assert fc["id"].str.ends_with("_evaluation").sum() == 0
    assert (fc["lower"] <= fc["predicted_sales"]).all() and (
        fc["predicted_sales"] <= fc["upper"]
    ).all()
    agg = pl.read_parquet(exports / "forecasts_aggregated.parquet")
    assert set(agg["level"]) == set(M5_LEVELS)  # all 12 levels
    total = agg.filter(pl.col("level") == "total")["predicted_sales"].sum()
    assert total == pytest.approx(fc["predicted_sales"].sum())
    imp = pl.read_parquet(exports / "feature_importance.parquet")
    assert imp.columns == ["feature", "gain", "split"]
    assert set(imp["feature"]) == {*store["cols"], *RECENT_COLUMNS, DAYS_AHEAD}

    before = (exports / "forecasts.parquet").read_bytes()
    real = batch.forecast_frame
    monkeypatch.setattr(
        batch,
        "forecast_frame",
        lambda *a, **k: real(*a, **k).with_columns(pl.col("predicted_sales") * -1),
    )
    with pytest.raises(ValueError, match="exports left unchanged"):
        run_batch_forecast(
            store["feats"],
            store["res"],
            exports,
            encoder=store["encoder"],
            extra_columns=store["keys"],
        )
    assert (exports / "forecasts.parquet").read_bytes() == before


def test_batch_forecast_equals_the_champion_on_its_whole_encoded_window(
    store: dict[str, Any], tmp_path: Path
) -> None:
    """The batch reads only the horizon rows whole (history and encodings column by column) and
    must forecast exactly what the champion gives on the whole window encoded at the last day."""
    out = run_batch_forecast(store["feats"], store["res"], tmp_path, encoder=store["encoder"],
                             extra_columns=store["keys"])  # fmt: skip
    client = store["res"].client()
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    inner = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}")
    model = inner.unwrap_python_model().model
    start_d = int(version.tags["train_start_d"])
    feats: pl.DataFrame = store["feats"]
    last_day = int(feats.filter(pl.col("sales").is_not_null())["d"].max())
    window = store["encoder"](feats.filter(pl.col("d") >= start_d - CONTEXT_DAYS), last_day)
    rows = window.filter(pl.col("d") > last_day).sort("id", "d")
    expected = np.clip(model.forecast(rows, history_matrix(window, last_day)), 0.0, None)
    np.testing.assert_array_equal(out.forecasts["predicted_sales"].to_numpy(), expected)
    assert out.forecasts.height == 10 * 28 and np.isfinite(expected).all()
