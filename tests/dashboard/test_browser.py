"""Every dashboard page rendered by `streamlit run` in headless Chromium, with a screenshot each.

Screenshots go to tests/artifacts/dashboard/ (gitignored). Needs an installed Chromium
(Debian: `apt-get install -y chromium`) and the `playwright` Python package (it drives the
installed browser; no browser download).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.screenshots import PAGES, TITLES, capture, find_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
MIN_CHARTS = {"home": 2, "forecasting": 1, "inventory": 3, "performance": 6, "data": 4}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None, reason="no Chromium installed (apt-get install -y chromium)"
    ),
]


def test_every_page_renders_in_chromium(dash_home_files: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    env = {
        "FORECASTING_HOME": str(dash_home_files),
        "MLFLOW_TRACKING_URI": f"sqlite:///{dash_home_files / 'mlflow.db'}",
    }
    shots = capture(ARTIFACTS, env, timeout_ms=120_000)
    assert [s.page for s in shots] == list(PAGES)
    for shot in shots:
        assert shot.title == TITLES[shot.page]
        assert shot.exceptions == 0, f"{shot.page}: Streamlit exception shown"
        assert shot.charts >= MIN_CHARTS[shot.page], f"{shot.page}: {shot.charts} charts"
        assert shot.path.stat().st_size > 20_000, f"{shot.page}: screenshot looks empty"
