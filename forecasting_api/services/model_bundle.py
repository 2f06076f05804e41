"""The champion model: verified in a child process, then loaded here, with its registry facts.

LightGBM's native loader can crash the whole process (SIGSEGV, exit 139) on a damaged model
file, before any Python exception could be caught. So a new version is never opened in the
serving process first: its artifacts are downloaded to a private folder and fingerprinted
(SHA-256 of every file), a child process (:mod:`.model_check`) loads that folder and predicts
a few real feature rows, and only when the child exits cleanly, and the files still have the
same fingerprint, does the serving process load the very same folder. A passed check is
remembered by fingerprint (and LightGBM version), so a restart loads the same files at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from forecasting_api.services.errors import LoadError, PredictionError, TransientLoadError
from forecasting_api.services.feature_source import FeatureSource
from forecasting_assets import store
from forecasting_assets.modeling.family import ModelFamily
from forecasting_assets.modeling.forecast import Calibration, quantile_matrix
from forecasting_assets.modeling.quantile_calibration import (
    QuantileCalibration,
    calibration_from_dict,
)
from forecasting_assets.modeling.quantiles import LOWER_Q, UPPER_Q

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 300.0
"""Most seconds the child may take to load and smoke-test a version."""
SMOKE_FILE = "smoke_rows.parquet"
VERIFIED_DIR = Path(tempfile.gettempdir()) / "forecasting_api_verified"
"""Markers of model files that passed the child check (a restart need not check them again)."""


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """The champion pyfunc model and what the registry says about it."""

    version: str
    info: dict[str, Any]
    model: Any
    feature_columns: tuple[str, ...]
    importance: dict[str, dict[str, float]] | None
    importance_source: str | None
    calibration: Calibration | None
    loaded_at: dt.datetime
    smoke_test: str
    digest: str = ""
    """SHA-256 over the verified model files."""
    direct: Callable[[pl.DataFrame], np.ndarray] | None = None
    """The model's own predict on a polars frame, without the pyfunc input conversion."""

    @property
    def run_id(self) -> str | None:
        return self.info.get("run_id")

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Point forecasts (>= 0) for the feature rows in ``frame``."""
        if self.direct is not None:
            out = np.asarray(self.direct(frame), np.float64)
        else:
            x = model_input(frame, self.feature_columns)
            out = np.asarray(self.model.predict(x), np.float64)
        out = out.reshape(-1)
        if out.shape[0] != frame.height:
            raise PredictionError(503, "model returned a wrong number of predictions")
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)

    def interval(
        self, point: np.ndarray, ids: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The 80 % interval (q10, q90) of the points of series ``ids`` from the model's
        calibration, as the batch forecasts compute it; ``None`` without a calibration."""
        return None if self.calibration is None else interval_of(self.calibration, point, ids)


def interval_of(
    cal: Calibration, point: np.ndarray, ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``lower``/``upper`` of ``point`` (series ``ids``) as the pipeline computes them."""
    q = quantile_matrix(cal, point, ids)
    lo, hi = q[:, cal.quantiles.index(LOWER_Q)], q[:, cal.quantiles.index(UPPER_Q)]
    return np.minimum(lo, point), np.maximum(hi, point)


def model_input(frame: pl.DataFrame, columns: Sequence[str]) -> Any:
    """The pandas frame the pyfunc expects: feature columns, categorical ids as strings."""
    return (
        frame.select(list(columns))
        .with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.String))
        .to_pandas()
    )


def calibration_from(raw: Any) -> Calibration | None:
    """The pipeline's calibration from its logged dict; ``None`` if absent or unusable."""
    if not isinstance(raw, dict):
        return None
    try:
        cal = calibration_from_dict(raw)
        cal.quantiles.index(LOWER_Q), cal.quantiles.index(UPPER_Q)
        pooled = cal.fallback if isinstance(cal, QuantileCalibration) else cal
        if len(pooled.residuals) != len(pooled.edges) + 1:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return cal


def _calibration_of(model: Any) -> Calibration | None:
    try:
        raw = getattr(model.unwrap_python_model(), "calibration", None)
    except Exception:
        return None
    return calibration_from(raw)


def direct_predictor(
    model: Any, columns: Sequence[str], schema: dict[str, Any] | None = None
) -> Callable[[pl.DataFrame], np.ndarray] | None:
    """A faster path to the same numbers (the child process checked them): the pipeline's
    ``ModelFamily.predict`` on polars, or a plain numeric LightGBM booster on one thread.
    ``None`` when the model is neither; then the pyfunc's own predict is used."""
    try:
        inner = model.unwrap_python_model()
    except Exception:
        inner = None
    demand = getattr(inner, "model", None)
    if isinstance(demand, ModelFamily):
        return lambda frame: demand.predict(frame.select(columns))
    try:
        booster = model.get_raw_model()
    except Exception:
        return None
    numeric = schema is not None and all(
        schema.get(c) is not None and schema[c].is_numeric() for c in columns
    )
    if (
        not isinstance(booster, lgb.Booster)
        or not numeric
        or booster.feature_name() != list(columns)
    ):
        return None

    def predict(frame: pl.DataFrame) -> np.ndarray:
        x = np.column_stack([frame.get_column(c).to_numpy() for c in columns])
        return booster.predict(x.astype(np.float64, copy=False), num_threads=1)

    return predict


def _importance_from(
    info: dict[str, Any], model: Any
) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """MLflow run artifact ``feature_importance.json``, else the native LightGBM booster."""
    run_id = info.get("run_id")
    raw = store.load_run_json_artifact(run_id, "feature_importance.json") if run_id else None
    if isinstance(raw, dict) and raw:
        out: dict[str, dict[str, float]] = {}
        for feat, val in raw.items():
            if isinstance(val, dict):
                out[str(feat)] = {
                    "gain": float(val.get("gain", 0.0) or 0.0),
                    "split": float(val.get("split", 0.0) or 0.0),
                }
            elif isinstance(val, int | float):
                out[str(feat)] = {"gain": float(val), "split": 0.0}
        if out:
            return out, "mlflow_artifact"
    try:  # native LightGBM booster behind the pyfunc flavor
        booster = model.get_raw_model()
        imp = {
            n: {"gain": float(g), "split": float(s)}
            for n, g, s in zip(
                booster.feature_name(),
                booster.feature_importance("gain"),
                booster.feature_importance("split"),
                strict=True,
            )
        }
        return imp, "model"
    except Exception:
        return None, None


# --------------------------------------------------------------------------- verification
def digest_tree(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"crashed with signal {signal.Signals(-code).name}"
        except ValueError:
            return f"crashed with signal {-code}"
    return f"exited with code {code}"


def _verified_marker(digest: str) -> Path:
    """Where a passed check of these exact files (and this LightGBM) is remembered."""
    key = hashlib.sha256(f"{digest}|{lgb.__version__}|{sys.version}".encode()).hexdigest()
    return VERIFIED_DIR / key


def check_in_child(model_dir: Path, rows: Path | None, timeout: float = CHECK_TIMEOUT_S) -> int:
    """Load ``model_dir`` and predict ``rows`` in a child process; the number of rows checked.

    :class:`LoadError` if the child crashes, fails, times out or answers invalid predictions.
    """
    cmd = [sys.executable, "-m", "forecasting_api.services.model_check", str(model_dir)]
    if rows is not None:
        cmd.append(str(rows))
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=os.environ.copy(),
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"check did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
        raise LoadError(f"check process {_exit_reason(done.returncode)} {tail[0][:300]}".strip())
    try:
        return int(json.loads(done.stdout.strip().splitlines()[-1])["rows"])
    except (ValueError, KeyError, IndexError) as exc:
        raise LoadError("check process gave no result") from exc


def load_model_bundle(features: FeatureSource | None) -> ModelBundle | None:
    """Verify the champion in a child process, then load it; ``None`` if there is none.

    :class:`LoadError` (naming the version) when it is broken in any way.
    """
    info = store.champion_info()
    if info is None:
        return None
    version = str(info["version"])
    try:
        return _verified_load(info, features)
    except LoadError as exc:
        raise type(exc)(f"champion v{version}: {exc}") from exc


def load_last_good(features: FeatureSource | None, bad: str, tries: int = 3) -> ModelBundle | None:
    """The newest older version than ``bad`` that passes the check (at most ``tries``)."""
    older = [v for v in store.model_versions() if int(v) < int(bad)][:tries]
    for version in older:
        info = store.version_info(version)
        if info is None:
            return None
        try:
            return _verified_load(info, features)
        except LoadError as exc:
            logger.warning("fallback v%s refused too: %s", version, exc)
    return None


def _verified_load(info: dict[str, Any], features: FeatureSource | None) -> ModelBundle:
    import mlflow.pyfunc
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="champion_") as tmp:
        try:
            local = store.download_model(str(info["version"]), Path(tmp) / "model")
            meta = Model.load(str(local))
        except Exception as exc:
            raise TransientLoadError(
                f"model files could not be read ({type(exc).__name__}: {exc})"
            ) from exc
        cols = store.champion_feature_columns(info, meta)
        if not cols:
            raise LoadError("no feature_columns param and no model signature")
        rows_path = None
        if features is not None:
            missing = features.missing(cols)
            if missing:
                raise LoadError(f"feature columns missing from features table: {missing[:10]}")
            rows = features.sample(cols)
            if rows.height:
                rows_path = Path(tmp) / SMOKE_FILE
                rows.write_parquet(rows_path)
        digest = digest_tree(local)
        marker = _verified_marker(digest)
        if marker.is_file():
            checked = -1
        else:
            checked = check_in_child(local, rows_path)
            if digest_tree(local) != digest:
                raise LoadError("model files changed during the check")
            with contextlib.suppress(OSError):
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(str(info["version"]))
        model = mlflow.pyfunc.load_model(str(local))  # the very files the child verified
    importance, importance_source = _importance_from(info, model)
    return ModelBundle(
        version=str(info["version"]),
        info=info,
        model=model,
        feature_columns=tuple(cols),
        importance=importance,
        importance_source=importance_source,
        calibration=_calibration_of(model),
        loaded_at=dt.datetime.now(dt.UTC),
        direct=direct_predictor(model, cols, features.schema if features is not None else None),
        smoke_test=(
            "ok (these files passed the child-process check before)"
            if checked < 0
            else f"ok ({checked} rows, in a child process)"
            if checked
            else "loaded in a child process; no feature rows to predict"
        ),
        digest=digest,
    )


def smoke_test(bundle: ModelBundle, features: FeatureSource) -> str:
    """Predict a few rows of a (new) features table with a loaded model; LoadError if invalid."""
    missing = features.missing(bundle.feature_columns)
    if missing:
        raise LoadError(
            f"champion v{bundle.version}: feature columns missing from features table: "
            f"{missing[:10]}"
        )
    rows = features.sample(bundle.feature_columns)
    if rows.height == 0:
        return "skipped: no feature rows"
    try:
        out = bundle.predict(rows)
    except Exception as exc:
        raise LoadError(
            f"champion v{bundle.version}: smoke test failed ({type(exc).__name__}: {exc})"
        ) from exc
    if out.shape[0] != rows.height or not np.all(np.isfinite(out)):
        raise LoadError(f"champion v{bundle.version}: smoke test gave invalid predictions")
    return f"ok ({rows.height} rows)"
