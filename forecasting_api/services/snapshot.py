"""The immutable bundle a request reads (forecasts, features, model) and id resolution."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from forecasting_api.services.errors import PredictionError
from forecasting_api.services.feature_source import FeatureSource
from forecasting_api.services.forecast_index import ForecastIndex, strip_suffix
from forecasting_api.services.model_bundle import ModelBundle

RESOLVE_CACHE_SIZE = 100_000  # id spellings remembered per snapshot (~330 B each, <= 32 MiB)


class Resolved(NamedTuple):
    """A request's series after id resolution (a tuple: cheap to make per item)."""

    series_id: str
    item_id: str
    store_id: str
    pos: int = -1
    """Position in the forecast index, -1 when the series has no forecasts."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything a request needs, never mutated; replaced as a whole on reload."""

    forecasts: ForecastIndex | None = None
    features: FeatureSource | None = None
    model: ModelBundle | None = None
    errors: dict[str, str] = field(default_factory=dict)
    stores: frozenset[str] = frozenset()
    store_parts: tuple[int, ...] = ()
    """Distinct numbers of ``_``-separated parts of the store ids, most first."""
    resolved: dict[tuple[str, str | None], Resolved] = field(default_factory=dict, repr=False)
    """Memo of :meth:`resolve` successes (a pure function of this snapshot)."""

    @classmethod
    def compose(
        cls,
        forecasts: ForecastIndex | None,
        features: FeatureSource | None,
        model: ModelBundle | None,
        errors: dict[str, str],
    ) -> Snapshot:
        stores: set[str] = set()
        if forecasts is not None:
            stores.update(forecasts.series_store)
        if features is not None:
            stores.update(s for _, s in features.series.values() if s)
        parts = tuple(sorted({s.count("_") + 1 for s in stores}, reverse=True))
        return cls(forecasts, features, model, dict(errors), frozenset(stores), parts)

    @property
    def ready(self) -> bool:
        return self.forecasts is not None and self.model is not None

    @property
    def data_start(self) -> dt.date | None:
        """First day of the features table (``None`` until it is loaded)."""
        return self.features.min_date if self.features else None

    @property
    def data_end(self) -> dt.date | None:
        dates = [
            d
            for d in (
                self.features.max_date if self.features else None,
                self.forecasts.max_date if self.forecasts else None,
            )
            if d is not None
        ]
        return max(dates) if dates else None

    def resolve(self, item_id: str, store_id: str | None) -> Resolved:
        """Accept ``FOODS_1_001`` + ``CA_1`` or ``FOODS_1_001_CA_1``; 404/422 otherwise.

        Successes are memoized (up to :data:`RESOLVE_CACHE_SIZE` spellings): a repeated id
        costs one dict lookup instead of the suffix parsing.
        """
        key = (item_id, store_id)
        found = self.resolved.get(key)
        if found is None:
            found = self._resolve(item_id, store_id)
            if len(self.resolved) < RESOLVE_CACHE_SIZE:
                self.resolved[key] = found
        return found

    def _resolve(self, item_id: str, store_id: str | None) -> Resolved:
        if self.forecasts is None and self.features is None:
            raise PredictionError(503, "no forecasts or features are loaded yet: not ready")
        item = strip_suffix(item_id)
        suffix_store = self._suffix_store(item)
        if store_id is None:
            if suffix_store is None:
                raise PredictionError(
                    404,
                    f"unknown series '{item_id}': give store_id, or an item_id that ends with "
                    f"a known store (e.g. FOODS_1_001_CA_1)",
                )
            store_id = suffix_store
            item = item[: -len(store_id) - 1]
        else:
            if store_id not in self.stores:
                raise PredictionError(404, f"unknown store_id '{store_id}'")
            if suffix_store is not None:
                if suffix_store != store_id:
                    raise PredictionError(
                        422,
                        f"item_id '{item_id}' ends with store '{suffix_store}' "
                        f"but store_id is '{store_id}'",
                    )
                item = item[: -len(store_id) - 1]
        sid = f"{item}_{store_id}"
        fc = self.forecasts
        if fc is not None and (pos := fc.series_pos.get(sid)) is not None:
            return Resolved(sid, fc.series_item[pos], fc.series_store[pos], pos)
        if self.features is not None and sid in self.features.series:
            it, st = self.features.series[sid]
            return Resolved(sid, it or item, st or store_id)
        raise PredictionError(404, f"unknown item_id '{item}' in store '{store_id}'")

    def _suffix_store(self, item: str) -> str | None:
        """The longest known store that ``item`` ends with (after a ``_``), else ``None``.

        When two stores both match, the longer one ends with ``_`` + the shorter, so it has
        more ``_``-separated parts: trying the part counts from most to fewest finds the
        longest match with one split and one set lookup per count.
        """
        for n in self.store_parts:
            head = item.rsplit("_", n)
            if len(head) == n + 1:
                candidate = item[len(head[0]) + 1 :]
                if candidate in self.stores:
                    return candidate
        return None
