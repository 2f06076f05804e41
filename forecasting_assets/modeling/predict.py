"""The MLflow pyfunc wrapper of the demand model family (direct + recursive LightGBM blends).

``predict(model_input)`` takes a pandas DataFrame with the model's input columns: the feature
columns of the features table (categorical ids as strings, e.g. ``store_id="CA_1"``; numbers as
numbers) and the recent-sales features (:mod:`~forecasting_assets.modeling.recent`), and returns
one-step point forecasts in units/day (>= 0). Horizon forecasts, which feed predictions back,
use :meth:`LightGBMDemandModel.forecast`. The quantile calibration travels with the model too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import polars as pl

from forecasting_assets.modeling.family import GLOBAL, DemandModel, ModelFamily, for_every_part
from forecasting_assets.modeling.spec import ModelSpec

SPEC_FILE = "model_spec.json"


def _file_key(group: str, part: str, i: int = 0) -> str:
    """Artifact key of the ``i``-th booster of a part's bag (the first keeps the one-seed name)."""
    return f"booster_{'global' if group == GLOBAL else group}_{part}" + (f"_seed{i}" if i else "")


class LightGBMDemandModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: every member's boosters and specs, the store routing and blend weights, and
    the quantile calibration."""

    def __init__(self) -> None:
        self.model: ModelFamily | None = None
        self.calibration: dict[str, Any] | None = None

    def load_context(self, context: Any) -> None:
        """Load the boosters, the specs and the quantile calibration from the model artifacts."""
        arts = context.artifacts
        meta = json.loads(Path(arts["spec"]).read_text())
        members = {
            g: DemandModel(
                boosters={
                    k: [
                        lgb.Booster(model_file=arts[_file_key(g, k, i)])
                        for i in range(int(v.get("seeds", 1)))
                    ]
                    for k, v in parts.items()
                },
                specs={k: ModelSpec.from_dict(v["spec"]) for k, v in parts.items()},
            )
            for g, parts in meta["members"].items()
        }
        routing = meta["store_group"]
        if all(isinstance(g, str) for g in routing.values()):  # one routing for every part
            routing = for_every_part(routing, [k for m in members.values() for k in m.boosters])
        self.model = ModelFamily(
            members, routing, dict(meta["recursive_weight"]), float(meta["default_weight"])
        )
        cal = arts.get("calibration")
        self.calibration = json.loads(Path(cal).read_text()) if cal else None

    @property
    def input_columns(self) -> list[str]:
        """Columns :meth:`predict` reads."""
        return self._model().input_columns

    def _model(self) -> ModelFamily:
        if self.model is None:
            raise RuntimeError("model not loaded")
        return self.model

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """One-step point forecasts (>= 0) for each input row (a pandas DataFrame).

        Unannotated on purpose: MLflow derives a schema from predict() type hints; the explicit
        signature logged with the model is the contract.
        """
        frame = (
            pl.from_pandas(model_input)
            if not isinstance(model_input, pl.DataFrame)
            else model_input
        )
        return self._model().predict(frame)

    def forecast(self, rows: pl.DataFrame, history: np.ndarray) -> np.ndarray:
        """Horizon forecast (see :meth:`ModelFamily.forecast`)."""
        return self._model().forecast(rows, history)


def write_model_artifacts(
    directory: Path, model: ModelFamily, calibration: dict[str, Any]
) -> dict[str, str]:
    """Write boosters, spec and calibration files; return the pyfunc ``artifacts`` mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"spec": directory / SPEC_FILE, "calibration": directory / "quantile_calibration.json"}
    for g, member in model.members.items():
        for k, bag in member.boosters.items():
            for i, booster in enumerate(bag):
                key = _file_key(g, k, i)
                paths[key] = directory / f"{key}.txt"
                booster.save_model(str(paths[key]))
    meta = {
        "members": {g: {k: {"spec": m.specs[k].to_dict(), "seeds": len(bag)}
                        for k, bag in m.boosters.items()}
                    for g, m in model.members.items()},
        "store_group": model.store_group,
        "recursive_weight": model.recursive_weight,
        "default_weight": model.default_weight,
    }  # fmt: skip
    paths["spec"].write_text(json.dumps(meta))
    paths["calibration"].write_text(json.dumps(calibration))
    return {k: str(v) for k, v in paths.items()}
