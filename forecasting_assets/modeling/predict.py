"""The MLflow pyfunc wrapper of the LightGBM demand model.

``predict(model_input)`` takes a pandas DataFrame with the feature columns of the features table
(categorical ids as strings, e.g. ``store_id="CA_1"``; numbers as numbers) and returns point
forecasts in units/day (>= 0). :meth:`ModelSpec.input_frame` turns a polars features frame into
exactly that input. The quantile calibration travels with the model as an artifact too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import polars as pl

from forecasting_assets.modeling.train import ModelSpec


class LightGBMDemandModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: LightGBM booster + the spec mapping features to its matrix."""

    def __init__(self) -> None:
        self.booster: lgb.Booster | None = None
        self.spec: ModelSpec | None = None
        self.calibration: dict[str, Any] | None = None

    def load_context(self, context: Any) -> None:
        """Load the booster, the spec and the quantile calibration from the model artifacts."""
        arts = context.artifacts
        self.booster = lgb.Booster(model_file=arts["booster"])
        self.spec = ModelSpec.from_dict(json.loads(Path(arts["spec"]).read_text()))
        cal = arts.get("calibration")
        self.calibration = json.loads(Path(cal).read_text()) if cal else None

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Point forecasts (>= 0) for each input row (a pandas DataFrame of feature columns).

        Unannotated on purpose: MLflow derives a schema from predict() type hints; the explicit
        signature logged with the model is the contract.
        """
        if self.booster is None or self.spec is None:
            raise RuntimeError("model not loaded")
        frame = (
            pl.from_pandas(model_input)
            if not isinstance(model_input, pl.DataFrame)
            else model_input
        )
        x = self.spec.to_matrix(frame)
        return np.clip(np.asarray(self.booster.predict(x), np.float64), 0.0, None)


def write_model_artifacts(
    directory: Path, booster: lgb.Booster, spec: ModelSpec, calibration: dict[str, Any]
) -> dict[str, str]:
    """Write booster, spec and calibration files; return the pyfunc ``artifacts`` mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "booster": directory / "booster.txt",
        "spec": directory / "model_spec.json",
        "calibration": directory / "quantile_calibration.json",
    }
    booster.save_model(str(paths["booster"]))
    paths["spec"].write_text(json.dumps(spec.to_dict()))
    paths["calibration"].write_text(json.dumps(calibration))
    return {k: str(v) for k, v in paths.items()}
