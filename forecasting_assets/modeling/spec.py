"""How a features frame becomes a model's float32 matrix, and which columns each part reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from forecasting_assets.modeling.recent import DAYS_AHEAD, RECENT_COLUMNS

DIRECT, RECURSIVE = "direct", "recursive"

"""The two parts of a model: one prediction per row, or day by day feeding predictions back."""


@dataclass
class ModelSpec:
    """How a features frame becomes the model's float32 matrix."""

    feature_columns: list[str]
    categorical_columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)  # string columns -> levels
    origin_horizon: int = 0
    """A part that reads :data:`~forecasting_assets.modeling.recent.DAYS_AHEAD` learns from rows
    1..``origin_horizon`` days after their origin."""

    @property
    def reads_origin(self) -> bool:
        """Whether the part reads the recent features as of the forecast origin."""
        return DAYS_AHEAD in self.feature_columns

    @classmethod
    def from_schema(
        cls,
        schema: Mapping[str, pl.DataType],
        feature_columns: Sequence[str],
        categorical_columns: Sequence[str],
    ) -> ModelSpec:
        """Spec of the given columns; Enum columns record their category list (code = index)."""
        missing = [c for c in feature_columns if c not in schema]
        if missing:
            raise KeyError(f"feature columns missing from the features table: {missing}")
        cats: dict[str, list[str]] = {}
        for c in feature_columns:
            dtype = schema[c]
            if isinstance(dtype, pl.Enum):
                cats[c] = list(dtype.categories)
            elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical):
                raise TypeError(f"column {c}: free strings are not supported, use an Enum")
        cat_cols = [c for c in feature_columns if c in categorical_columns or c in cats]
        return cls(list(feature_columns), cat_cols, cats)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored with the model)."""
        return {
            "feature_columns": self.feature_columns,
            "categorical_columns": self.categorical_columns,
            "categories": self.categories,
            "origin_horizon": self.origin_horizon,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            list(data["feature_columns"]),
            list(data["categorical_columns"]),
            dict(data["categories"]),
            int(data.get("origin_horizon", 0)),
        )

    def _expr(self, c: str, dtype: pl.DataType) -> pl.Expr:
        if c in self.categories:
            levels = self.categories[c]
            if isinstance(dtype, pl.Enum) and list(dtype.categories) == levels:
                return pl.col(c).to_physical().cast(pl.Float32)
            return (
                pl.col(c)
                .cast(pl.String)
                .replace_strict(
                    levels, list(range(len(levels))), default=None, return_dtype=pl.Float32
                )
            )
        return pl.col(c).cast(pl.Float32)

    def to_matrix(self, frame: pl.DataFrame, mask: pl.Series | None = None) -> np.ndarray:
        """Float32 ``(rows, features)`` matrix of the rows where ``mask`` is true (all rows if None);
        categories as codes, unknown/null as NaN.

        Filled one column at a time, so the peak memory is the matrix plus one column (no
        filtered copy of the whole frame); column-major, so every column is one contiguous write
        (LightGBM reads either layout).
        """
        schema = frame.schema
        n = frame.height if mask is None else int(mask.sum())
        x = np.empty((n, len(self.feature_columns)), dtype=np.float32, order="F")
        for j, c in enumerate(self.feature_columns):
            col = frame.get_column(c) if mask is None else frame.get_column(c).filter(mask)
            values = col.to_frame().select(self._expr(c, schema[c])).to_series()
            x[:, j] = values.to_numpy(allow_copy=True)
        return x

    def input_frame(self, frame: pl.DataFrame) -> Any:
        """pandas frame for the pyfunc model: categorical columns as strings, numbers as float64."""
        return frame.select(
            [
                pl.col(c).cast(pl.String) if c in self.categories else pl.col(c).cast(pl.Float64)
                for c in self.feature_columns
            ]
        ).to_pandas()


def input_spec(specs: Mapping[str, ModelSpec]) -> ModelSpec:
    """One spec over the columns of every part but the days ahead (a one-step prediction is 1
    day ahead)."""
    cols = list(dict.fromkeys(c for s in specs.values() for c in s.feature_columns
                              if c != DAYS_AHEAD))  # fmt: skip
    cats = list(dict.fromkeys(c for s in specs.values() for c in s.categorical_columns))
    levels = {k: v for s in specs.values() for k, v in s.categories.items()}
    return ModelSpec(cols, cats, levels)


def model_specs(
    schema: Mapping[str, pl.DataType],
    feature_columns: Sequence[str],
    categorical_columns: Sequence[str],
    parts: Sequence[str] = (DIRECT, RECURSIVE),
    direct_origin_horizon: int = 0,
) -> dict[str, ModelSpec]:
    """Specs of the parts: the direct model reads ``feature_columns`` (and, with
    ``direct_origin_horizon`` > 0, the recent features as of the origin and the days ahead, up to
    that many); the recursive one drops the sales lags >= 28 (its recent features supersede them)
    and adds the recent ones."""
    unknown = set(parts) - {DIRECT, RECURSIVE}
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {DIRECT!r}, {RECURSIVE!r}")
    specs = {}
    if DIRECT in parts:
        if direct_origin_horizon > 0:
            origin = [*RECENT_COLUMNS, DAYS_AHEAD]
            with_origin = {**schema, **dict.fromkeys(origin, pl.Float32())}
            specs[DIRECT] = ModelSpec.from_schema(
                with_origin, [*feature_columns, *origin], categorical_columns
            )
            specs[DIRECT].origin_horizon = direct_origin_horizon
        else:
            specs[DIRECT] = ModelSpec.from_schema(schema, feature_columns, categorical_columns)
    if RECURSIVE in parts:
        cols = [c for c in feature_columns if not c.startswith("sales_lag_")]
        specs[RECURSIVE] = ModelSpec.from_schema(
            schema, [*cols, *RECENT_COLUMNS], categorical_columns
        )
    return specs
