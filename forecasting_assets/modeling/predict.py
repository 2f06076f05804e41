"""The MLflow pyfunc wrapper of the demand model (direct + recursive LightGBM blend).

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

from forecasting_assets.modeling.train import DemandModel, ModelSpec

SPEC_FILE = "model_spec.json"


class LightGBMDemandModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: the blend's boosters, their specs and weights, and the calibration."""

    def __init__(self) -> None:
        self.model: DemandModel | None = None
        self.calibration: dict[str, Any] | None = None

    def load_context(self, context: Any) -> None:
        """Load the boosters, the specs and the quantile calibration from the model artifacts."""
        arts = context.artifacts
        meta = json.loads(Path(arts["spec"]).read_text())
        self.model = DemandModel(
            boosters={k: lgb.Booster(model_file=arts[f"booster_{k}"]) for k in meta["parts"]},
            specs={k: ModelSpec.from_dict(v["spec"]) for k, v in meta["parts"].items()},
            weights={k: float(v["weight"]) for k, v in meta["parts"].items()},
        )
        cal = arts.get("calibration")
        self.calibration = json.loads(Path(cal).read_text()) if cal else None

    @property
    def input_columns(self) -> list[str]:
        """Columns :meth:`predict` reads."""
        return self._model().input_columns

    def _model(self) -> DemandModel:
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
        """Horizon forecast (see :meth:`DemandModel.forecast`)."""
        return self._model().forecast(rows, history)


def write_model_artifacts(
    directory: Path, model: DemandModel, calibration: dict[str, Any]
) -> dict[str, str]:
    """Write boosters, spec and calibration files; return the pyfunc ``artifacts`` mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"spec": directory / SPEC_FILE, "calibration": directory / "quantile_calibration.json"}
    for k, booster in model.boosters.items():
        paths[f"booster_{k}"] = directory / f"booster_{k}.txt"
        booster.save_model(str(paths[f"booster_{k}"]))
    meta = {
        "parts": {
            k: {"weight": model.weights[k], "spec": model.specs[k].to_dict()}
            for k in model.boosters
        }
    }
    paths["spec"].write_text(json.dumps(meta))
    paths["calibration"].write_text(json.dumps(calibration))
    return {k: str(v) for k, v in paths.items()}
