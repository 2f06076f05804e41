"""The feature catalog: name, family, version, definition, inputs and summary statistics."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forecasting_assets.features.columns import (
    CALENDAR_FEATURES,
    categorical_columns,
    encoding_names,
    feature_columns,
    lag_name,
    roll_names,
)
from forecasting_assets.features.config import FEATURES_VERSION, FeatureConfig
from forecasting_assets.settings import json_safe


@dataclass(frozen=True)
class FeatureSpec:
    """One catalog entry (``version`` changes when this feature's definition changes)."""

    name: str
    family: str
    definition: str
    inputs: tuple[str, ...]
    version: str = "1"


_CALENDAR_DEFS = {
    "day_of_week": "ISO day of week of date (Monday=1 .. Sunday=7)",
    "day_of_month": "day of month (1-31)",
    "week_of_year": "ISO week number (1-53)",
    "month": "month (1-12)",
    "quarter": "quarter (1-4)",
    "year": "calendar year",
    "is_weekend": "1 on Saturday and Sunday",
    "is_month_start": "1 on the first day of the month",
    "is_month_end": "1 on the last day of the month",
}


def feature_specs(cfg: FeatureConfig | None = None) -> list[FeatureSpec]:
    """Catalog entries of every model input column, in table order."""
    cfg = cfg or FeatureConfig()
    h = cfg.horizon
    specs: list[FeatureSpec] = []
    for k in cfg.direct_lags:
        specs.append(FeatureSpec(
            lag_name(k), "lag",
            f"sales {k} days before (>= horizon {h}: known at the forecast origin); null before "
            f"launch or before the series starts",
            ("sales", "is_launched"),
        ))  # fmt: skip
    s = cfg.rolling_shift
    for w in cfg.windows:
        mean, std = roll_names(w, s)
        window = f"the {w} days ending {s} days before (days d-{s + w - 1}..d-{s})"
        specs.append(FeatureSpec(
            mean, "rolling", f"mean of launched sales over {window}; null unless the whole "
            f"window lies within the series' days (pre-launch days inside are skipped)", ("sales", "is_launched"),
        ))  # fmt: skip
        specs.append(FeatureSpec(
            std, "rolling", f"sample std of launched sales over {window} (needs 2 values)",
            ("sales", "is_launched"),
        ))  # fmt: skip
    for name in CALENDAR_FEATURES:
        specs.append(FeatureSpec(name, "calendar", _CALENDAR_DEFS[name], ("date",)))
    events = ("event_name_1", "event_type_1", "event_name_2", "event_type_2")
    specs += [
        FeatureSpec("has_event", "event", "1 if the day has any event", events),
        FeatureSpec("event_type_1_code", "event",
                    "event_type_1 as a fixed small int (0 none, 1 Cultural, 2 National, "
                    "3 Religious, 4 Sporting, 99 unknown)", ("event_type_1",)),
        FeatureSpec("event_name_1_code", "event",
                    "event_name_1 as a fixed small int (0 none, 1..30 the M5 events in "
                    "alphabetical order, 99 unknown)", ("event_name_1",)),
        FeatureSpec("event_type_2_code", "event", "event_type_2 coded like event_type_1_code",
                    ("event_type_2",)),
        FeatureSpec("days_to_next_event", "event",
                    "days until the next day with an event (0 on event days); null if none "
                    "follows in the calendar", events),
        FeatureSpec("days_since_prev_event", "event",
                    "days since the previous day with an event (0 on event days); null if none "
                    "precedes in the calendar", events),
        FeatureSpec("snap", "snap", "SNAP day flag of the series' own state", ("snap_<state>",)),
        FeatureSpec("sell_price", "price", "weekly sell price (null when not on sale)",
                    ("sell_price",)),
        FeatureSpec("price_change_1w", "price",
                    "sell_price / sell_price 7 days before - 1", ("sell_price",)),
        FeatureSpec("price_momentum_4w", "price",
                    "sell_price / mean sell_price over the previous 28 days", ("sell_price",)),
        FeatureSpec("price_momentum_year", "price",
                    "sell_price / mean sell_price over the previous 364 days", ("sell_price",)),
        FeatureSpec("price_rel_item", "price",
                    "sell_price / mean weekly sell_price of the item in this store over all its "
                    "weeks on sale (prices are known ahead, incl. the horizon)", ("sell_price",)),
        FeatureSpec("price_rel_dept", "price",
                    "sell_price / mean price of the store's department items on sale that week",
                    ("sell_price", "dept_id", "store_id", "wm_yr_wk")),
        FeatureSpec("price_n_unique", "price", "number of distinct weekly prices of the item×store",
                    ("sell_price",)),
        FeatureSpec("price_min", "price", "minimum weekly price of the item×store", ("sell_price",)),
        FeatureSpec("price_max", "price", "maximum weekly price of the item×store", ("sell_price",)),
        FeatureSpec("price_std", "price", "sample std of the item×store's weekly prices",
                    ("sell_price",)),
    ]  # fmt: skip
    for name in encoding_names(cfg):
        keys = cfg.encoding_keys[name]
        specs.append(FeatureSpec(
            name, "target_encoding",
            f"mean sales of launched days with d <= cutoff, grouped by {' × '.join(keys)} "
            f"(stored table: cutoff = last history day - {cfg.encoding_cutoff_offset}; "
            f"recompute per fold with add_target_encodings)",
            ("sales", "is_launched", *keys),
        ))  # fmt: skip
    return specs


def build_catalog(
    cfg: FeatureConfig,
    stats: dict[str, dict[str, float | None]],
    *,
    rows: int,
    last_history_d: int,
    encoding_cutoff_d: int,
    dtypes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The catalog document (JSON-serialisable)."""
    features = []
    for spec in feature_specs(cfg):
        entry = asdict(spec)
        entry["inputs"] = list(spec.inputs)
        if dtypes:
            entry["dtype"] = dtypes.get(spec.name)
        entry["stats"] = json_safe(stats.get(spec.name, {}))
        features.append(entry)
    return {
        "features_version": FEATURES_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "last_history_d": last_history_d,
        "encoding_cutoff_d": encoding_cutoff_d,
        "config": {
            "horizon": cfg.horizon,
            "direct_lags": list(cfg.direct_lags),
            "windows": list(cfg.windows),
            "rolling_shift": cfg.rolling_shift,
            "encoding_keys": {k: list(v) for k, v in cfg.encoding_keys.items()},
        },
        "training_filter": "is_launched and sales is not null (drops leading zeros and horizon)",
        "feature_columns_direct": feature_columns(cfg, "direct"),
        "categorical_columns": categorical_columns(),
        "features": features,
    }


def catalog_markdown(catalog: dict[str, Any]) -> str:
    """A compact Markdown table of the catalog (for the Dagster UI)."""
    lines = [
        f"Feature catalog v{catalog['features_version']} — {catalog['rows']:,} rows, "
        f"encoding cutoff d={catalog['encoding_cutoff_d']}",
        "",
        "| feature | family | v | null share | mean | min | max |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    for f in catalog["features"]:
        st = f.get("stats", {})
        lines.append(
            f"| {f['name']} | {f['family']} | {f['version']} | {fmt(st.get('null_share'))} | "
            f"{fmt(st.get('mean'))} | {fmt(st.get('min'))} | {fmt(st.get('max'))} |"
        )
    return "\n".join(lines)


def write_catalog(catalog: dict[str, Any], path: Path) -> None:
    """Write the catalog JSON to ``path`` (use a temporary path for an atomic write)."""
    Path(path).write_text(json.dumps(catalog, indent=2, default=str))
