"""Scale-out wiring: the demand model's groups trained as store partitions (``store_models``).

In the scale-out location every store with its own member (``DemandModelConfig.min_store_series``
and ``part_min_store_series``) trains it -- its parts, all backtest folds and the final model --
as its own partition, so training fans out across the Celery (or k8s) workers like the features
do. ``demand_model`` then reuses those members (same plan fingerprint: data, folds, window,
parameters), trains the global member if there is one (the small stores', or a part grouped
globally), chooses trees and blend weights on the folds, and logs, registers and gates the family
exactly as the default location does: the same data and config give the same model and
forecasts.

Files: partition ``S`` is ``<FORECASTING_HOME>/assets/store_models/S.pkl``, written atomically.
"""

import pickle
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from forecasting_assets.defs.assets.modeling import DemandModelConfig, demand_model_asset
from forecasting_assets.modeling.inputs import ModelInputs
from forecasting_assets.modeling.plan import plan_training
from forecasting_assets.modeling.train import GroupTraining
from forecasting_assets.scaleout import partitions_per_run, stores_partitions
from forecasting_assets.settings import atomic_write, get_settings

STORE_MODELS = "store_models"


def store_model_path(store: str) -> Path:
    """Where partition ``store`` of ``store_models`` lives."""
    return get_settings().assets_dir / STORE_MODELS / f"{store}.pkl"


@dg.asset(
    key=STORE_MODELS,
    partitions_def=stores_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=partitions_per_run()),
    group_name="modeling",
    kinds={"lightgbm"},
)
def store_models(
    context: dg.AssetExecutionContext,
    config: DemandModelConfig,
    features: pl.LazyFrame,
    sales_long: pl.LazyFrame,
) -> dg.MaterializeResult:
    """One store's member of the demand model family: its backtest forecasts on every fold and
    its final model (see ``demand_model``). Stores served only by the global member write
    nothing."""
    inputs = ModelInputs()
    plan = plan_training(features, sales_long, inputs.feature_columns, inputs.categorical_columns,
                         config.to_settings(), inputs.encoding_keys)  # fmt: skip
    trained: dict[str, Any] = {}
    for store in context.partition_keys:
        if not plan.serves(store):
            context.log.info("store %s is served by the global member: nothing to train", store)
            continue
        training = plan.train(features, store, inputs.encode)
        with atomic_write(store_model_path(store)) as tmp, open(tmp, "wb") as fh:
            pickle.dump(training, fh)
        trained[store] = {"rows": training.train_rows, "seconds": round(training.seconds, 1)}
    return dg.MaterializeResult(
        metadata={"trained": dg.MetadataValue.json(trained), "plan": plan.fingerprint}
    )


def load_store_models() -> list[GroupTraining]:
    """Every materialized store member (``demand_model`` keeps those of its own plan)."""
    out = []
    for path in sorted((get_settings().assets_dir / STORE_MODELS).glob("*.pkl")):
        with open(path, "rb") as fh:
            out.append(pickle.load(fh))
    return out


demand_model_from_partitions = demand_model_asset(deps=[store_models], trained=load_store_models)
"""``demand_model`` of the scale-out location: reuses the ``store_models`` partitions."""
