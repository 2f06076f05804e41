"""Fixtures for the API tests.

The API is started for real: ``uvicorn.Server`` on a free loopback port in a thread (or a
``uvicorn forecasting_api.main:app`` subprocess), never only ``TestClient``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api import helpers as fx
from tests.api.helpers import auth, running_server


@pytest.fixture(scope="session")
def api_home(tmp_path_factory: pytest.TempPathFactory) -> fx.Home:
    """Forecasts + features + a registered champion, built once per session (read-only!)."""
    return fx.build_home(tmp_path_factory.mktemp("api_home"))


@pytest.fixture(scope="module")
def live_api(api_home: fx.Home) -> Iterator[str]:
    """The app on the session home: auth on (KEYS), no rate limit, no reload."""
    with running_server(api_home.env()) as url:
        yield url


@pytest.fixture(scope="module")
def client(live_api: str) -> Iterator[httpx.Client]:
    """An authenticated client of ``live_api``."""
    with httpx.Client(base_url=live_api, headers=auth(), timeout=30) as c:
        yield c
