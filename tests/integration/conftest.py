from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from browser_service.fetcher import Fetcher
from browser_service.settings import Settings


@pytest.fixture(scope="session")
async def fetcher(settings: Settings) -> AsyncIterator[Fetcher]:
    """One started service for the tests that do not need a pool of their own."""
    service = Fetcher(settings)
    await service.start(launch_browser=True)
    yield service
    await service.close()
