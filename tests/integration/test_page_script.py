"""engines/page_script.py against real Chromium: what the engine's reads rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError

from browser_service.deadline import Deadline
from browser_service.engines.page_script import DOCUMENT_GONE, call
from browser_service.fetcher import Fetcher
from browser_service.pool import Lease
from tests.conftest import make_settings
from tests.site import FixtureServer


@pytest.fixture
async def lease(site: FixtureServer, tmp_path: Path) -> AsyncIterator[Lease]:
    """A pool slot's page, showing the fixture site's article."""
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service, service.pool.lease(Deadline(10)) as lease:
        await lease.page.goto(site.url("/article.html"))
        yield lease


async def test_a_script_gets_its_arguments_and_its_promise_is_awaited(lease: Lease) -> None:
    tricky = "quotes ' \" \\ </script> and ünïcödé ✓ \u2028"
    script = "(s, n, flag, none) => new Promise(r => setTimeout(() => r({s, n, flag, none, t: document.title})))"
    value = await call(lease.cdp, script, tricky, 42, True, None)
    assert value == {"s": tricky, "n": 42, "flag": True, "none": None, "t": await lease.page.title()}


async def test_a_script_that_throws_or_rejects_raises_with_its_message(lease: Lease) -> None:
    with pytest.raises(PlaywrightError, match="Error: boom"):
        await call(lease.cdp, "() => { throw new Error('boom') }")
    with pytest.raises(PlaywrightError, match="Error: nope"):
        await call(lease.cdp, "async () => { throw new Error('nope') }")


async def test_a_navigation_during_a_script_says_the_document_is_gone(lease: Lease) -> None:
    # The engine reads again on the new document when it sees this message (a page that navigates
    # itself while being read), as it did with Playwright's own evaluate. The script starts the
    # navigation itself, then waits for ever.
    leave = "() => { setTimeout(() => { location.href = '/article.html?next'; }); return new Promise(() => {}); }"
    with pytest.raises(PlaywrightError) as raised:
        await asyncio.wait_for(call(lease.cdp, leave), 8)
    assert raised.value.message == DOCUMENT_GONE
    await lease.page.wait_for_url("**/article.html?next")
