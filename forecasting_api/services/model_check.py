"""Child process: load a model folder and predict a few rows; exit 0 only if all is well.

``python -m forecasting_api.services.model_check <model_dir> [<rows.parquet>]`` prints
``{"rows": n}`` on success. A damaged file may crash this process (native code); the parent
(:func:`forecasting_api.services.model_bundle.check_in_child`) only sees the exit status.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl


def main(argv: list[str]) -> int:
    import mlflow.pyfunc

    from forecasting_api.services.model_bundle import model_input

    model = mlflow.pyfunc.load_model(argv[0])
    if len(argv) < 2:
        sys.stdout.write(json.dumps({"rows": 0}) + "\n")
        return 0
    rows = pl.read_parquet(argv[1])
    out = np.asarray(model.predict(model_input(rows, rows.columns)), np.float64).reshape(-1)
    if out.shape[0] != rows.height:
        sys.stderr.write(f"{out.shape[0]} predictions for {rows.height} rows\n")
        return 2
    if not np.all(np.isfinite(out)) or np.any(out < -1e-9):
        sys.stderr.write("predictions are not finite and >= 0\n")
        return 3
    sys.stdout.write(json.dumps({"rows": rows.height}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
