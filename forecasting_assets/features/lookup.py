"""Group statistics broadcast back to rows by a dense gather on the key codes, not a join."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

_SMALL_INT_CARDINALITY = {"day_of_week": 8, "wday": 8, "month": 13, "quarter": 5}


def _dense_key(
    schema: pl.Schema, keys: Sequence[str], cardinality: dict[str, int] | None = None
) -> tuple[pl.Expr, int] | None:
    """Row-major integer code of ``keys`` and the number of codes; None if not all dense."""
    known = {**_SMALL_INT_CARDINALITY, **(cardinality or {})}
    expr: pl.Expr | None = None
    size = 1
    for key in keys:
        dtype = schema[key]
        if isinstance(dtype, pl.Enum):
            code = pl.col(key).to_physical().cast(pl.Int64)
            card = len(dtype.categories)
        elif key in known:
            code = pl.col(key).cast(pl.Int64)
            card = known[key]
        else:
            return None
        expr = code if expr is None else expr * card + code
        size *= card
    if expr is None or size > 50_000_000:
        return None
    return expr, size


def lookup(
    frame: pl.LazyFrame,
    stats: pl.DataFrame,
    keys: Sequence[str],
    values: Sequence[str],
    cardinality: dict[str, int] | None = None,
) -> pl.LazyFrame:
    """Attach ``values`` of ``stats`` (one row per ``keys``) to the rows of ``frame``.

    Uses a gather on the dense key code when all keys are Enums or small non-negative ints of
    known ``cardinality``; otherwise a left join.
    """
    schema = frame.collect_schema()
    dense = _dense_key(schema, keys, cardinality)
    if dense is None:
        return frame.join(
            stats.select(*keys, *values).lazy(), on=list(keys), how="left", maintain_order="left"
        )
    key_expr, size = dense
    idx = stats.select(key_expr.alias("_k"))["_k"]
    cols = []
    for name in values:
        dense_values = pl.Series(name, [None], dtype=stats.schema[name]).extend_constant(
            None, size - 1
        )
        dense_values = dense_values.scatter(idx, stats[name])
        cols.append(pl.lit(dense_values).gather(key_expr).alias(name))
    return frame.with_columns(cols)
