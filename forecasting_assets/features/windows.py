"""Per-series windows as one pass over the sorted grid (pure polars expressions).

Rows are sorted by series then ``d``, days contiguous within a series. A window is a global
``shift`` / cumulative sum over the whole column, masked where it would cross a series boundary
(using the row's position within its series, ``_pos``). Window sums use exact integer arithmetic
(sales, prices in cents), so results do not depend on how the rows are batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from forecasting_assets.features.columns import roll_names


def series_position() -> pl.Expr:
    """``_pos``: 0-based row position within the series (rows sorted by series then day)."""
    new = (pl.col("id") != pl.col("id").shift(1)).fill_null(True)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    return (row - pl.when(new).then(row).forward_fill()).cast(pl.Int32).alias("_pos")


def cumulative(name: str, x: pl.Expr, *, squares: bool = True) -> list[pl.Expr]:
    """Within-series running sums (inclusive) used by :func:`_window_sum`; exact integers.

    ``{name}_c`` sum of values (nulls as 0), ``{name}_n`` count of non-nulls and, with
    ``squares``, ``{name}_q`` sum of squares. One global ``cum_sum`` minus its value just before
    the series' first row (forward-filled).
    """
    v = x.fill_null(0).cast(pl.Int64)
    parts = [("c", v), ("n", x.is_not_null().cast(pl.Int64))]
    if squares:
        parts.append(("q", v * v))
    first = pl.col("_pos") == 0
    out = []
    for suffix, val in parts:
        cum = val.cum_sum()
        base = pl.when(first).then(cum - val).forward_fill()
        out.append((cum - base).alias(f"{name}_{suffix}"))
    return out


def _window_sum(col: str, start: int, end: int) -> pl.Expr:
    """Sum over the rows ``i-end .. i-start`` of the same series (clipped at its first row).

    ``col`` is a within-series running sum from :func:`cumulative`. Null when the window lies
    entirely before the series' first row.
    """
    c = pl.col(col)
    lower = pl.when(pl.col("_pos") > end).then(c.shift(end + 1)).otherwise(0)
    return pl.when(pl.col("_pos") >= start).then(c.shift(start) - lower)


def window_sums(
    name: str, start: int, end: int, tag: str, *, squares: bool = True
) -> list[pl.Expr]:
    """Window sums ``_{tag}_s``, ``_{tag}_n`` (and ``_{tag}_q``) over rows ``i-end .. i-start``."""
    out = [
        _window_sum(f"{name}_c", start, end).alias(f"_{tag}_s"),
        _window_sum(f"{name}_n", start, end).alias(f"_{tag}_n"),
    ]
    if squares:
        out.append(_window_sum(f"{name}_q", start, end).alias(f"_{tag}_q"))
    return out


def rolling_stats(shift: int, windows: Sequence[int]) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Rolling (mean, std) of ``_y`` over rows ``i-shift-w+1 .. i-shift`` for every window ``w``.

    One global running sum per component (``_Cs`` values with nulls as 0, ``_Cn`` non-null count,
    ``_Cq`` squares; exact integers) is shifted once per distinct offset (``shift`` is shared by
    all windows), and every window sum is a difference of two shifted running sums. Returns
    (shifted columns, statistics): the shifted columns must be computed in an earlier step.
    Null unless the whole window lies inside the row's series (``_pos >= shift + w - 1``);
    nulls of the target inside the window (pre-launch days) are skipped via the count.
    """
    offsets = sorted({shift, *(shift + w for w in windows)})
    shifted = [
        pl.col(f"_C{kind}").shift(k, fill_value=0).alias(f"_C{kind}{k}")
        for k in offsets
        for kind in "snq"
    ]
    stats = []
    for w in windows:
        full = pl.col("_pos") >= shift + w - 1

        def diff(kind: str, w: int = w) -> pl.Expr:
            return (pl.col(f"_C{kind}{shift}") - pl.col(f"_C{kind}{shift + w}")).cast(pl.Float64)

        s, n, q = diff("s"), diff("n"), diff("q")
        mean = pl.when(full & (n > 0)).then(s / n)
        std = pl.when(full & (n > 1)).then(((q - s * s / n) / (n - 1)).clip(lower_bound=0.0).sqrt())
        m_name, s_name = roll_names(w, shift)
        stats += [mean.cast(pl.Float32).alias(m_name), std.cast(pl.Float32).alias(s_name)]
    return shifted, stats


def check_grid(stage: pl.DataFrame) -> None:
    """Fail loudly unless rows are grouped by series with consecutive days (shifts need it)."""
    row = stage.select(
        pl.col("_gap").sum().alias("gaps"),
        (pl.col("_pos") == 0).sum().alias("blocks"),
        pl.col("id").n_unique().alias("series"),
    ).row(0, named=True)
    if row["gaps"] or row["blocks"] != row["series"]:
        raise ValueError(
            "sales_long must be sorted by series then d with every day present: found "
            f"{row['gaps']} day gaps and {row['blocks']} series blocks for {row['series']} series"
        )


def within(k: int) -> pl.Expr:
    """True where the row ``k`` rows above belongs to the same series."""
    return pl.col("_pos") >= k


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den`` as Float32, null where ``den`` is not positive."""
    return pl.when(den > 0).then(num / den).cast(pl.Float32)
