"""Expose a generator of polars DataFrames as a LazyFrame (streamed by ``sink_parquet``)."""

from collections.abc import Callable, Iterator

import polars as pl
from polars.io.plugins import register_io_source


def lazy_from_batches(
    batches: Callable[[], Iterator[pl.DataFrame]], schema: pl.Schema, name: str | None = None
) -> pl.LazyFrame:
    """A LazyFrame reading ``batches()`` anew on every collect, honouring pushed-down
    predicates, projections and row limits (predicate first: it may use unprojected columns)."""

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        _batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        remaining = n_rows
        for batch in batches():
            out = batch if predicate is None else batch.filter(predicate)
            if with_columns is not None:
                out = out.select(with_columns)
            if remaining is not None:
                out = out.head(remaining)
                remaining -= out.height
            yield out
            if remaining is not None and remaining <= 0:
                return

    return register_io_source(source, schema=schema, explain_name=name)
