"""Model registry helpers and the champion promotion gate.

Rule: a new version becomes ``champion`` when there is no champion, or when the champion was
scored on the same data version and fold definition and the new version's backtest WRMSSE is
strictly lower. If the champion was scored on other data/folds the scores are not comparable:
the new version (scored on the current data) is promoted and the reason recorded. Otherwise the
champion stays and the reason is recorded. The alias only moves after a training completed, so a
failed training never moves it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecasting_assets.contracts import CHAMPION_ALIAS, MODEL_NAME

logger = logging.getLogger(__name__)

TAG_WRMSSE = "wrmsse"
"""Tag with the version's gate score: its mean WRMSSE over the backtest folds."""
TAG_DATA_VERSION = "data_version"
TAG_FOLDS = "fold_definition"


@dataclass(frozen=True)
class ChampionInfo:
    """What the gate needs to know about the current champion."""

    version: str
    wrmsse: float | None
    data_version: str | None
    fold_definition: str | None


@dataclass(frozen=True)
class Decision:
    """Outcome of the promotion gate."""

    promote: bool
    reason: str


def get_champion(client: MlflowClient, name: str = MODEL_NAME) -> ChampionInfo | None:
    """The current champion's version and backtest tags, or None."""
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None
    tags = mv.tags or {}
    raw = tags.get(TAG_WRMSSE)
    try:
        score = float(raw) if raw is not None else None
    except ValueError:
        score = None
    return ChampionInfo(str(mv.version), score, tags.get(TAG_DATA_VERSION), tags.get(TAG_FOLDS))


def decide(
    new_wrmsse: float, data_version: str, fold_definition: str, champion: ChampionInfo | None
) -> Decision:
    """The promotion gate (pure)."""
    if not math.isfinite(new_wrmsse):
        return Decision(False, f"new WRMSSE is not finite ({new_wrmsse})")
    if champion is None:
        return Decision(True, "no champion yet")
    if champion.data_version != data_version or champion.fold_definition != fold_definition:
        return Decision(
            True,
            f"champion v{champion.version} was scored on other data/folds "
            f"(data {champion.data_version} vs {data_version}); its score is not comparable, "
            "promoting the model scored on the current data",
        )
    if champion.wrmsse is None or not math.isfinite(champion.wrmsse):
        return Decision(True, f"champion v{champion.version} has no comparable WRMSSE")
    if new_wrmsse < champion.wrmsse:
        return Decision(
            True,
            f"WRMSSE {new_wrmsse:.5f} beats champion v{champion.version} ({champion.wrmsse:.5f})",
        )
    return Decision(
        False,
        f"WRMSSE {new_wrmsse:.5f} does not beat champion v{champion.version} ({champion.wrmsse:.5f})",
    )


def tag_version(
    client: MlflowClient, version: str, tags: dict[str, Any], name: str = MODEL_NAME
) -> None:
    """Set tags on a model version."""
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, str(v))


def apply_decision(
    client: MlflowClient, version: str, decision: Decision, name: str = MODEL_NAME
) -> None:
    """Move the champion alias when the decision says so; record the reason on the version."""
    tag_version(client, version, {"promotion": "promoted" if decision.promote else "rejected",
                                  "promotion_reason": decision.reason}, name)  # fmt: skip
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
        logger.info("model %s v%s is the new champion: %s", name, version, decision.reason)
    else:
        logger.info("model %s v%s not promoted: %s", name, version, decision.reason)
