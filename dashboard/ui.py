"""Shared look of the dashboard: palette, chart helpers, number formats and the empty state."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

import altair as alt
import polars as pl
import pyarrow as pa
import streamlit as st

from dashboard import paths
from forecasting_assets import contracts

MODEL = contracts.MODEL_KEY
PALETTE = {
    "history": "#4c78a8",
    "forecast": "#e4572e",
    "band": "#f4a582",
    "event": "#6c757d",
    "snap": "#59a14f",
    "good": "#2ca02c",
    "bad": "#d62728",
}
MODEL_COLORS = {
    MODEL: "#e4572e",
    "seasonal_naive": "#4c78a8",
    "naive": "#9ecae9",
    "moving_average": "#72b7b2",
    "ses": "#b279a2",
    "croston_sba": "#bab0ac",
}
CHART_HEIGHT = 320
CLASS_SCALE = alt.Scale(
    domain=["smooth", "erratic", "intermittent", "lumpy", "no_demand"],
    range=["#59a14f", "#edc948", "#4c78a8", "#e15759", "#bab0ac"],
)


def demand_class_bar(frame: pl.DataFrame, unit: str) -> alt.Chart:
    """Bar chart of how many rows of ``frame`` (``unit``: items, series) fall in each demand
    class (its ``demand_class`` column), largest first, in the class colours."""
    counts = frame.group_by("demand_class").len().sort("len", descending=True)
    return (
        alt.Chart(counts.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("len:Q", title=unit),
            y=alt.Y("demand_class:N", sort="-x", title=None),
            color=alt.Color("demand_class:N", legend=None, scale=CLASS_SCALE),
            tooltip=["demand_class", "len"],
        )
    )


def model_scale(models: list[str]) -> alt.Scale:
    """The same colour for the same model on every chart (the model in orange, baselines muted)."""
    extra = ["#54a24b", "#eeca3b", "#ff9da6", "#9d755d", "#f58518"]
    rng = [MODEL_COLORS.get(m) or extra[i % len(extra)] for i, m in enumerate(models)]
    return alt.Scale(domain=models, range=rng)


def _arrow_dataset(data: Any, datasets: dict[str, bytes]) -> dict[str, str]:
    """Altair data transformer: keep a chart's rows as an Arrow IPC dataset named by its hash."""
    table = pa.Table.from_pandas(data, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    raw = sink.getvalue().to_pybytes()
    name = "data-" + hashlib.sha1(raw).hexdigest()[:16]
    datasets[name] = raw
    return {"name": name}


alt.data_transformers.register("dashboard_arrow", _arrow_dataset)
_ALTAIR_LOCK = threading.Lock()  # the enabled data transformer is global to Altair


def chart(c: alt.TopLevelMixin, key: str | None = None) -> None:
    """Render an Altair chart full width with the Streamlit theme (consistent with the app).

    The rows go to the browser as Arrow datasets next to the spec (as ``st.altair_chart`` does),
    not as Altair's inline JSON (slow for thousands of points), and the spec is built without
    Altair's JSON-schema validation (~20 ms a chart): the charts are fixed code, validated by the
    tests (``VALIDATE``).
    """
    datasets: dict[str, bytes] = {}
    with _ALTAIR_LOCK, alt.data_transformers.enable("dashboard_arrow", datasets=datasets):
        spec = c.to_dict(validate=VALIDATE)
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    st.vega_lite_chart(spec, width="stretch", key=key)


VALIDATE = False  # tests set this to True to validate every spec


def empty_state(what: str, produced_by: str = "the pipeline") -> None:
    """Say what is missing and what to run, instead of raising."""
    st.info(
        f"**{what}** is not materialized yet (looked in `{paths.home_dir()}`). "
        f"It is produced by {produced_by}. Run the pipeline first:",
        icon=":material/hourglass_empty:",
    )
    st.code("\n".join(paths.RUN_HINT), language="bash")


def fmt_num(x: float | None, digits: int = 1) -> str:
    """1234567 -> '1.2M'."""
    if x is None:
        return "–"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.{digits}f}{suffix}"
    return f"{x:.{digits}f}" if x != int(x) else f"{int(x)}"


def fmt_money(x: float | None) -> str:
    return "–" if x is None else f"${fmt_num(x)}"


def pct_change(new: float | None, old: float | None) -> str | None:
    if new is None or not old:
        return None
    return f"{(new / old - 1) * 100:+.1f}% vs last 28 d"


def age(ts: dt.datetime | None) -> str:
    """Human age of a timestamp ('3 h ago')."""
    if ts is None:
        return "unknown age"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    secs = (dt.datetime.now(dt.UTC) - ts).total_seconds()
    if secs < 3600:
        return f"{max(secs, 0) / 60:.0f} min ago"
    if secs < 86400 * 2:
        return f"{secs / 3600:.0f} h ago"
    return f"{secs / 86400:.0f} days ago"


def flat_records(records: list[dict[str, Any]]) -> pl.DataFrame:
    """A table from JSON records: nested dicts become ``key.sub`` columns, lists become text."""
    rows = []
    for rec in records:
        row: dict[str, Any] = {}
        for k, v in rec.items():
            if isinstance(v, dict):
                for sk, sv in v.items():
                    row[f"{k}.{sk}"] = (
                        sv if isinstance(sv, int | float | str | bool) or sv is None else str(sv)
                    )
            elif isinstance(v, list):
                row[k] = ", ".join(str(x) for x in v)
            else:
                row[k] = v
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None, strict=False)


def forecast_chart(
    hist: pl.DataFrame | None,
    fc: pl.DataFrame | None,
    marks: pl.DataFrame | None,
    show_events: bool = True,
    show_snap: bool = True,
    height: int = CHART_HEIGHT,
) -> alt.LayerChart:
    """History joined to the forecast with its 80 % band; events as rules, SNAP days shaded."""
    layers: list[Any] = []
    x = alt.X("date:T", title=None, axis=alt.Axis(format="%b %d, %Y", labelAngle=0))
    if marks is not None and show_snap and marks.height:
        snap = marks.filter(pl.col("snap") == 1).select("date")
        if snap.height:
            snap = snap.with_columns(
                (pl.col("date") + dt.timedelta(days=1)).alias("date_end"),
                pl.lit("SNAP day").alias("kind"),
            )
            layers.append(
                alt.Chart(snap.to_pandas())
                .mark_rect(opacity=0.10, color=PALETTE["snap"])
                .encode(
                    x=x, x2="date_end:T", tooltip=[alt.Tooltip("date:T"), alt.Tooltip("kind:N")]
                )
            )
    if fc is not None and fc.height:
        band = fc.to_pandas()
        layers.append(
            alt.Chart(band)
            .mark_area(opacity=0.30, color=PALETTE["band"])
            .encode(
                x=x,
                y=alt.Y("lower:Q", title="units / day"),
                y2="upper:Q",
                tooltip=[
                    alt.Tooltip("date:T"),
                    alt.Tooltip("lower:Q", format=",.1f"),
                    alt.Tooltip("upper:Q", format=",.1f"),
                ],
            )
        )
    series = []
    if hist is not None and hist.height:
        series.append(
            hist.select(
                "date",
                pl.col("sales").cast(pl.Float64).alias("units"),
                pl.lit("actual").alias("series"),
            )
        )
    if fc is not None and fc.height:
        series.append(
            fc.select(
                "date", pl.col("predicted_sales").alias("units"), pl.lit("forecast").alias("series")
            )
        )
    if series:
        lines = pl.concat(series)
        layers.append(
            alt.Chart(lines.to_pandas())
            .mark_line(strokeWidth=2)
            .encode(
                x=x,
                y=alt.Y("units:Q", title="units / day"),
                color=alt.Color(
                    "series:N",
                    title=None,
                    scale=alt.Scale(
                        domain=["actual", "forecast"],
                        range=[PALETTE["history"], PALETTE["forecast"]],
                    ),
                    legend=alt.Legend(orient="top", direction="horizontal"),
                ),
                tooltip=[
                    alt.Tooltip("date:T"),
                    alt.Tooltip("series:N"),
                    alt.Tooltip("units:Q", format=",.1f"),
                ],
            )
        )
    if marks is not None and show_events and marks.height:
        ev = marks.filter(pl.col("event").is_not_null()).select("date", "event")
        if ev.height:
            layers.append(
                alt.Chart(ev.to_pandas())
                .mark_rule(strokeDash=[4, 3], color=PALETTE["event"], opacity=0.7)
                .encode(x=x, tooltip=[alt.Tooltip("date:T"), alt.Tooltip("event:N")])
            )
    if not layers:
        layers.append(alt.Chart(pl.DataFrame({"date": []}).to_pandas()).mark_point())
    return alt.layer(*layers).properties(height=height)
