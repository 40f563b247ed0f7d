"""Page actions in real Chromium on the fixture site: what each step does, and how a step fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from browser_service.api import http_status
from browser_service.contract import FetchRequest, FetchResponse
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.site import INFINITE_TOTAL, FixtureServer


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fetcher]:
    async with Fetcher(make_settings(tmp_path_factory.mktemp("actions"), pool_size=1)) as fetcher:
        yield fetcher


async def fetch(service: Fetcher, url: str, actions: list[dict[str, Any]], **fields: Any) -> FetchResponse:
    return await service.fetch(FetchRequest.model_validate({"url": url, "actions": actions, **fields}))


async def test_click_reveals_content(service: Fetcher, site: FixtureServer) -> None:
    hidden = "The hidden chapter tells how the keeper climbed the tower."
    before = await fetch(service, site.url("/reveal"), [], render="browser")
    assert before.ok and hidden not in (before.markdown or "")
    after = await fetch(service, site.url("/reveal"), [{"type": "click", "selector": "#more"}])
    assert after.ok and hidden in (after.markdown or "") and after.warnings == []
    # actions imply the browser: render=auto goes straight to it
    assert [(a.engine, a.outcome) for a in after.attempts] == [("browser", "ok")]


async def test_type_and_press_submit_a_form(service: Fetcher, site: FixtureServer) -> None:
    steps = [
        {"type": "type", "selector": "#q", "text": "lighthouses"},
        {"type": "press", "selector": "#q", "key": "Enter"},
        {"type": "wait_for", "selector": "h1"},
    ]
    page = await fetch(service, site.url("/search"), steps)
    assert page.ok and page.final_url == site.url("/results?q=lighthouses")
    assert page.title == "Results" and "You searched for: lighthouses." in (page.markdown or "")


async def test_scroll_until_stable_loads_every_item(service: Fetcher, site: FixtureServer) -> None:
    first = await fetch(service, site.url("/infinite"), [], render="browser", formats=["text"])
    assert (first.text or "").count("of the endless list") == 10
    page = await fetch(
        service, site.url("/infinite"), [{"type": "scroll_until_stable"}], formats=["text"], max_chars=100_000
    )
    text = page.text or ""
    assert page.ok and text.count("of the endless list") == INFINITE_TOTAL and page.warnings == []
    assert f"Item {INFINITE_TOTAL} of the endless list." in text
    # Fewer scrolls than the list needs: what loaded, and a warning that it was still growing.
    short = await fetch(
        service, site.url("/infinite"), [{"type": "scroll_until_stable", "max_steps": 2}], formats=["text"]
    )
    assert short.ok and (short.text or "").count("of the endless list") == 30
    assert short.warnings == [
        "step 1 of 1 (actions[0]: scroll_until_stable): the page was still growing after max_steps=2 scrolls; "
        "read as it was"
    ]


async def test_a_missing_selector_names_the_step(service: Fetcher, site: FixtureServer) -> None:
    steps = [
        {"type": "click", "selector": "#more"},
        {"type": "click", "selector": "#nope", "timeout_ms": 500},
        {"type": "scroll", "to": "bottom"},
    ]
    page = await fetch(service, site.url("/reveal"), steps)
    assert not page.ok and page.error is not None and page.error.kind == "action_failed"
    assert page.error.step == 1 and not page.error.retryable and http_status(page) == 422
    assert page.error.message == (
        "The page loaded, but step 2 of 3 (actions[1]: click '#nope') failed: no element matches '#nope' "
        "(waited 500 ms). Check the step against the page (a fetch with formats ['html'] or ['raw_html'] "
        "shows it); sending the same steps again will not help."
    )
    assert [a.outcome for a in page.attempts] == ["action_failed"]  # never retried


async def test_an_invisible_element_and_a_wait_that_runs_out(service: Fetcher, site: FixtureServer) -> None:
    ghost = await fetch(service, site.url("/reveal"), [{"type": "click", "selector": "#ghost", "timeout_ms": 300}])
    assert ghost.error is not None and ghost.error.kind == "action_failed" and ghost.error.step == 0
    assert "'#ghost' matches 1 element(s), but the first is not visible" in ghost.error.message
    waiting = await fetch(service, site.url("/reveal"), [{"type": "wait_for", "selector": "#extra", "timeout_ms": 300}])
    assert waiting.error is not None and waiting.error.kind == "action_failed"
    assert "the element did not become visible within 300 ms (1 element(s) match, none visible)" in (
        waiting.error.message
    )


async def test_the_request_deadline_bounds_the_steps(service: Fetcher, site: FixtureServer) -> None:
    steps = [{"type": "wait_ms", "ms": 100}, {"type": "wait_for", "selector": "#never", "timeout_ms": 60_000}]
    page = await fetch(service, site.url("/reveal"), steps, timeout_ms=3000)
    assert page.error is not None and page.error.kind == "timeout" and page.error.phase == "action"
    assert page.error.step == 1 and page.error.message == (
        "The request's deadline of 2750 ms ran out during step 2 of 2 (actions[1]: wait_for '#never'). "
        "Raise timeout_ms if the step needs longer, or check that the page can do it."
    )
    assert page.error.host_state == "available"  # the host served the page: its breaker does not count this
    assert page.duration_ms is not None and page.duration_ms <= 3000
    # the pool is free again: the next request gets the slot
    assert (await fetch(service, site.url("/reveal"), [{"type": "scroll", "to": 200}])).ok


async def test_actions_are_part_of_the_cache_key(service: Fetcher, site: FixtureServer) -> None:
    url = site.url("/reveal?cache=actions")
    plain = await fetch(service, url, [], render="browser")
    clicked = await fetch(service, url, [{"type": "click", "selector": "#more"}], max_age_s=3600)
    assert plain.ok and clicked.ok and clicked.source == "live"  # not the stored copy of the plain page
    again = await fetch(service, url, [{"type": "click", "selector": "#more"}], max_age_s=3600)
    assert again.source == "cache" and again.markdown == clicked.markdown
