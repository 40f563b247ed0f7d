"""The browser pool under load and faults: slots, queue, crashes, leaks, isolation, recycling."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from browser_service.deadline import Deadline
from browser_service.engines.events import page_events
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_fetch_http import error_kind, fetch
from tests.site import FixtureServer


async def until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Wait for a state the test needs (not for time to pass), failing loudly if it never comes.

    Polls because the states (pool counters, the fixture site's hit counts) live in objects that
    publish no events; the poll interval only bounds how soon the test notices.
    """
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_twice_as_many_requests_as_slots(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=2)) as service:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, service.pool.health().in_use)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(
            *(fetch(service, site.url(f"/js-article?delay=300&i={i}"), render="browser") for i in range(4))
        )
        watcher.cancel()
        assert [r.ok for r in results] == [True] * 4
        assert peak == 2
        await service.pool.drained()
        health = service.pool.health()
        assert (health.in_use, health.queued, health.pages_served) == (0, 0, 4)


async def test_full_queue_answers_overloaded_at_once(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1, queue_size=1)) as service:
        first = asyncio.create_task(fetch(service, site.url("/slow?ms=1500"), render="browser"))
        await until(lambda: service.pool.health().in_use == 1)
        second = asyncio.create_task(fetch(service, site.url("/article.html"), render="browser"))
        await until(lambda: service.pool.health().queued == 1)
        third = await fetch(service, site.url("/article.html"), render="browser")
        assert error_kind(third) == "overloaded"
        assert third.error is not None and third.error.retry_after_s is not None and third.error.retry_after_s > 0
        assert third.duration_ms is not None and third.duration_ms < 100
        assert (await first).ok and (await second).ok


async def test_queue_wait_is_bounded_by_the_deadline(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        first = asyncio.create_task(fetch(service, site.url("/slow?ms=3000"), render="browser"))
        await until(lambda: service.pool.health().in_use == 1)
        waiting = await fetch(service, site.url("/article.html"), render="browser", timeout_ms=1000)
        assert error_kind(waiting) == "timeout" and waiting.error.phase == "queue"  # type: ignore[union-attr]
        assert (await first).ok
        await service.pool.drained()
        assert service.pool.health().in_use == 0


async def test_killed_chromium_recovers(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path)) as service:
        await service.start(launch_browser=True)
        pid = service.pool.health().browser_pid
        assert pid is not None
        hits = site.hits["/slow"]
        in_flight = asyncio.create_task(fetch(service, site.url("/slow?ms=2000"), render="browser", timeout_ms=15000))
        await until(lambda: site.hits["/slow"] > hits)  # the browser is mid-request
        os.kill(pid, signal.SIGKILL)
        response = await in_flight
        # The crash is typed on the first attempt; the retry on the relaunched browser succeeds.
        assert [a.outcome for a in response.attempts] == ["browser_error", "ok"]
        assert response.ok and "How Lighthouses Work" in (response.markdown or "")
        after = await fetch(service, site.url("/article.html"), render="browser")
        assert after.ok
        await service.pool.drained()
        health = service.pool.health()
        assert health.restarts == 1 and health.launches == 2 and health.browser_pid not in (None, pid)
        assert health.browser_connected and health.in_use == 0


async def test_no_pages_or_contexts_left_after_200_requests(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=4)) as service:
        paths = ["/article.html", "/js-article?delay=50", "/no-such-page", "/spa.html", "/data.json"]
        semaphore = asyncio.Semaphore(6)

        async def one(i: int) -> str | None:
            async with semaphore:
                return error_kind(await fetch(service, site.url(paths[i % len(paths)]), render="browser"))

        kinds = await asyncio.gather(*(one(i) for i in range(200)))
        assert kinds.count("not_found") == 40 and kinds.count(None) == 160
        await service.pool.drained()
        health = service.pool.health()
        assert (health.in_use, health.queued, health.pages_served) == (0, 0, 200)
        # What is open is exactly the clean slots kept for reuse (a slot is replaced after 50 leases,
        # so there may be none): one context with one page each.
        assert service.pool.idle_slots <= 4
        assert service.pool.open_contexts() == service.pool.open_pages() == service.pool.idle_slots


async def test_cancelled_request_frees_its_slot(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        hits = site.hits["/slow"]
        task = asyncio.create_task(fetch(service, site.url("/slow?ms=5000"), render="browser"))
        await until(lambda: site.hits["/slow"] > hits)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.pool.drained()
        assert service.pool.health().in_use == 0
        assert service.pool.open_contexts() == service.pool.open_pages() == service.pool.idle_slots == 1
        assert (await fetch(service, site.url("/article.html"), render="browser", timeout_ms=3000)).ok


@pytest.mark.parametrize("isolation", ["reset", "context"])
async def test_leases_are_isolated(site: FixtureServer, tmp_path: Path, isolation: str) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1, isolation=isolation)) as service:
        script_hits = site.hits["/cached.js"]
        for _ in range(3):
            response = await fetch(service, site.url("/storage.html"), wait_for="#seen[data-done]", formats=["text"])
            # cookies, local/session storage, IndexedDB, CacheStorage and window.name left by the
            # previous lease on the same slot (and by its pagehide handler) are all gone
            assert "seen: nothing" in (response.text or "")
        assert site.hits["/cached.js"] - script_hits == 3  # no HTTP cache shared between leases
        await service.pool.drained()
        assert service.pool.idle_slots == (1 if isolation == "reset" else 0)
        # Positive control: within one lease the same probe sees every kind of state it looks for.
        async with service.pool.lease(Deadline(10)) as lease:
            for _ in range(2):
                await lease.page.goto(site.url("/storage.html"))
                await lease.page.wait_for_selector("#seen[data-done]", state="attached")
            seen = await lease.page.text_content("#seen")
        assert seen == "seen: cookie,localStorage,sessionStorage,window.name,indexedDB,CacheStorage"


async def test_a_callers_headers_and_cookies_do_not_reach_the_next_lease(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        fields = {"render": "browser", "formats": ["text"], "main_content": False}
        first = await fetch(
            service,
            site.url("/echo-headers"),
            headers={"X-Agent-Test": "yes"},
            cookies={"session": "letmein"},
            **fields,
        )
        assert "x-agent-test: yes" in (first.text or "").lower() and "session=letmein" in (first.text or "")
        await service.pool.drained()
        second = await fetch(service, site.url("/echo-headers"), **fields)  # the same slot, cleaned
        assert second.ok and second.text is not None and "user-agent" in second.text.lower()
        assert "x-agent-test" not in second.text.lower() and "letmein" not in second.text
        await service.pool.drained()
        assert service.pool.idle_slots == 1  # one slot served both: it was cleaned, not replaced


async def test_a_lease_leaves_no_listener_on_the_slots_page(site: FixtureServer, tmp_path: Path) -> None:
    # A slot's page is subscribed to its events once; each lease's listeners come off after it,
    # whatever its outcome, so the next lease on the page hears only its own page.
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        outcomes = [
            error_kind(await fetch(service, site.url(path), render="browser"))
            for path in ("/article.html", "/redirect?n=2", "/404.html", "/js-article?delay=300", "/lazy-route.html")
        ]
        assert outcomes == [None, None, "not_found", None, None]
        await service.pool.drained()
        assert service.pool.idle_slots == 1  # the same slot served every lease
        async with service.pool.lease(Deadline(10)) as lease:
            assert page_events(lease.page).listening() == 0


async def test_a_lease_that_timed_out_gets_a_fresh_context_not_a_cleaning(
    site: FixtureServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A page spinning its renderer cannot be cleaned (the navigation to about:blank would wait on
    # it until the reset gives up): its slot is closed at once, and the next lease opens a new context.
    caplog.set_level(logging.INFO, logger="browser_service.pool")
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        ok = await fetch(service, site.url("/article.html"), render="browser")
        await service.pool.drained()
        assert ok.ok and service.pool.idle_slots == 1  # cleaned and kept
        stuck = await fetch(service, site.url("/spin"), render="browser", timeout_ms=2000)
        assert error_kind(stuck) == "timeout"
        await service.pool.drained()
        assert service.pool.idle_slots == 0  # closed, not cleaned
        assert [r.getMessage() for r in caplog.records if "reset failed" in r.getMessage()] == []
        after = await fetch(service, site.url("/article.html?again"), render="browser")
        assert after.ok and after.markdown is not None and after.markdown.startswith("# How Lighthouses Work")


async def test_browser_is_recycled_after_n_pages(site: FixtureServer, tmp_path: Path) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1, recycle_after=3)) as service:
        results = [await fetch(service, site.url("/article.html"), render="browser") for _ in range(7)]
        assert all(r.ok for r in results)
        health = service.pool.health()
        assert (health.recycles, health.launches, health.restarts) == (2, 3, 0)


async def test_close_leaves_no_browser_running(site: FixtureServer, tmp_path: Path) -> None:
    service = Fetcher(make_settings(tmp_path))
    await service.start(launch_browser=True)
    pid = service.pool.health().browser_pid
    assert pid is not None and psutil.pid_exists(pid)
    assert (await fetch(service, site.url("/article.html"), render="browser")).ok
    await service.close()
    await until(lambda: not _alive(pid))
    after = await fetch(service, site.url("/article.html"), render="browser")
    assert error_kind(after) == "browser_error" and "shutting down" in after.error.message  # type: ignore[union-attr]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
