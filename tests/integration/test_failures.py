"""Failure handling end to end: retries, per-host breakers, Retry-After, challenges, quarantine.

Each test gets its own origin (a fixture site on a port of its own, so a host of its own for the
breakers and politeness limits) and its own service, so host state never leaks between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from browser_service.contract import FetchResponse, Health, HostStatus, QuarantineList
from browser_service.fetcher import Fetcher
from browser_service.guard import host_key
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_fetch_http import error_kind, fetch
from tests.integration.test_pool import until
from tests.site import FixtureServer


@pytest.fixture
def origin() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.close()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Fetcher]:
    # A challenge that never passes holds the browser this long; the passing one needs < 1 s.
    async with Fetcher(make_settings(tmp_path, challenge_wait_ms=2000)) as fetcher:
        yield fetcher


# --- retries -----------------------------------------------------------------------------------


async def test_an_origin_failing_twice_is_retried_to_success(service: Fetcher, origin: FixtureServer) -> None:
    response = await fetch(service, origin.url("/fail-then-ok?n=2&id=a"))
    assert response.ok and response.markdown is not None and response.markdown.startswith("# How Lighthouses Work")
    assert [a.outcome for a in response.attempts] == ["http_error", "http_error", "ok"]
    assert [a.status_code for a in response.attempts] == [503, 503, 200]
    assert origin.hits["/fail-then-ok"] == 3


async def test_retries_stop_at_the_attempt_limit(service: Fetcher, origin: FixtureServer) -> None:
    response = await fetch(service, origin.url("/fail-then-ok?n=5&id=b"))
    assert error_kind(response) == "http_error" and response.error is not None
    assert response.error.status_code == 503 and response.error.retryable
    assert len(response.attempts) == 3 and origin.hits["/fail-then-ok"] == 3


async def test_errors_that_cannot_improve_are_not_retried(service: Fetcher, origin: FixtureServer) -> None:
    for path, kind in (("/error", "http_error"), ("/no-such-page", "not_found"), ("/gone", "not_found")):
        response = await fetch(service, origin.url(path))
        assert error_kind(response) == kind and len(response.attempts) == 1, path
        assert origin.hits[path] == 1


async def test_a_reset_connection_is_retried(service: Fetcher, origin: FixtureServer) -> None:
    response = await fetch(service, origin.url("/reset"))
    assert error_kind(response) == "connection_error"
    assert [a.outcome for a in response.attempts] == ["connection_error"] * 3 and origin.hits["/reset"] == 3


# --- circuit breaker -----------------------------------------------------------------------------


async def test_the_breaker_opens_fails_fast_half_opens_and_closes(tmp_path: Path, origin: FixtureServer) -> None:
    settings = make_settings(
        tmp_path,
        retry_attempts=1,
        breaker_window=4,
        breaker_min_calls=4,
        breaker_failure_rate=0.5,
        breaker_open_s=1.0,
        breaker_half_open_calls=1,
    )
    url = origin.url("/flaky")
    host = host_key(url)
    async with Fetcher(settings) as service:
        assert (await fetch(service, url)).ok  # one success: the window is 1 of 4
        origin.failing.set()
        for _ in range(2):
            assert error_kind(await fetch(service, url, allow_stale=False)) == "http_error"
        assert service.breakers.state(host).circuit == "closed"  # 3 calls: below the minimum
        third = await fetch(service, url, allow_stale=False)  # 4 calls, 3 failed (75 % ≥ 50 %): opens
        assert error_kind(third) == "http_error" and third.error is not None
        assert third.error.host_state == "unavailable"
        assert "3 of the last 4 fetches" in third.error.message

        hits = origin.hits["/flaky"]
        refused = await fetch(service, url, allow_stale=False)
        assert error_kind(refused) == "circuit_open" and refused.error is not None
        assert refused.error.retry_after_s is not None and 0 < refused.error.retry_after_s <= 1.0
        assert refused.error.host_state == "unavailable" and refused.attempts == []
        assert origin.hits["/flaky"] == hits  # failed fast: nothing reached the origin

        await until(lambda: service.breakers.state(host).circuit == "half_open", limit_s=5)
        origin.failing.clear()
        trial = await fetch(service, url)
        assert trial.ok and origin.hits["/flaky"] == hits + 1
        status = service.breakers.state(host)
        assert status.circuit == "closed" and status.state == "available"


async def test_a_half_open_trial_that_fails_reopens(tmp_path: Path, origin: FixtureServer) -> None:
    settings = make_settings(
        tmp_path,
        retry_attempts=1,
        breaker_window=2,
        breaker_min_calls=2,
        breaker_open_s=0.5,
        breaker_half_open_calls=1,
    )
    url = origin.url("/flaky")
    host = host_key(url)
    origin.failing.set()
    async with Fetcher(settings) as service:
        for _ in range(2):
            await fetch(service, url)
        assert service.breakers.state(host).circuit == "open"
        await until(lambda: service.breakers.state(host).circuit == "half_open", limit_s=5)
        assert error_kind(await fetch(service, url)) == "http_error"
        assert service.breakers.state(host).circuit == "open"


async def test_an_open_circuit_serves_the_stale_copy(tmp_path: Path, origin: FixtureServer) -> None:
    settings = make_settings(tmp_path, retry_attempts=1, breaker_window=2, breaker_min_calls=2, breaker_open_s=60)
    url = origin.url("/flaky")
    async with Fetcher(settings) as service:
        assert (await fetch(service, url)).source == "live"
        origin.failing.set()
        for _ in range(2):
            stale = await fetch(service, url)
            assert stale.ok and stale.stale and stale.live_error is not None
        hits = origin.hits["/flaky"]
        degraded = await fetch(service, url)
        assert degraded.ok and degraded.stale and degraded.source == "cache"
        assert degraded.live_error is not None and degraded.live_error.kind == "circuit_open"
        assert degraded.markdown is not None and degraded.markdown.startswith("# How Lighthouses Work")
        assert origin.hits["/flaky"] == hits


async def test_not_found_and_caller_errors_do_not_count_against_the_host(tmp_path: Path, origin: FixtureServer) -> None:
    settings = make_settings(tmp_path, breaker_window=2, breaker_min_calls=2)
    async with Fetcher(settings) as service:
        for _ in range(3):
            assert error_kind(await fetch(service, origin.url("/no-such-page"))) == "not_found"
        status = service.breakers.state(host_key(origin.base_url))
        assert status.circuit == "closed" and status.failures == 0 and status.state == "available"


# --- politeness ----------------------------------------------------------------------------------


async def test_retry_after_is_honoured_by_later_requests(service: Fetcher, origin: FixtureServer) -> None:
    limited = await fetch(service, origin.url("/rate-limited?after=2"), timeout_ms=1500)
    assert error_kind(limited) == "rate_limited" and limited.error is not None
    assert limited.error.retry_after_s == 2 and len(limited.attempts) == 1  # 2 s does not fit 1.5 s: no retry
    told_at = origin.hit_times["/rate-limited"][-1]

    # Another page of the same host, with too little time to wait: refused without contacting it.
    hasty = await fetch(service, origin.url("/article.html"), timeout_ms=1000)
    assert error_kind(hasty) == "rate_limited" and hasty.error is not None
    assert hasty.error.retry_after_s is not None and 0 < hasty.error.retry_after_s <= 2
    assert origin.hits["/article.html"] == 0

    # With time to spare, the request waits the pause out, then goes.
    patient = await fetch(service, origin.url("/article.html"), timeout_ms=10_000)
    assert patient.ok and origin.hits["/article.html"] == 1
    assert origin.hit_times["/article.html"][0] - told_at >= 1.9


async def test_a_503_with_retry_after_that_does_not_fit_is_answered_at_once(
    service: Fetcher, origin: FixtureServer
) -> None:
    unavailable = await fetch(service, origin.url("/unavailable"), timeout_ms=5000)
    assert error_kind(unavailable) == "http_error" and unavailable.error is not None
    assert unavailable.error.status_code == 503 and unavailable.error.retry_after_s == 7
    assert len(unavailable.attempts) == 1  # 7 s does not fit a 5 s deadline: no retry
    assert service.limits.blocked_for(host_key(origin.base_url)) > 6
    assert service.breakers.state(host_key(origin.base_url)).state == "degraded"


# --- challenges and blocks ---------------------------------------------------------------------


async def test_a_challenge_escalates_once_and_is_never_cached(service: Fetcher, origin: FixtureServer) -> None:
    response = await fetch(service, origin.url("/challenge"))
    assert error_kind(response) in ("blocked", "captcha") and response.error is not None
    assert response.error.vendor == "cloudflare" and not response.error.retryable
    assert [(a.engine, a.outcome) for a in response.attempts] == [
        ("http", "escalated"),
        ("browser", response.error.kind),
    ]
    hits = origin.hits["/challenge"]
    again = await fetch(service, origin.url("/challenge"), max_age_s=3600)
    assert error_kind(again) == response.error.kind and origin.hits["/challenge"] > hits  # nothing was stored


async def test_a_challenge_the_browser_passes_yields_the_page(tmp_path: Path, origin: FixtureServer) -> None:
    # Its own service with the default-sized challenge wait: the pass (a cookie and a reload) takes
    # well under a second, but a loaded machine can stretch it past the short wait the others use.
    async with Fetcher(make_settings(tmp_path, challenge_wait_ms=20_000)) as service:
        response = await fetch(service, origin.url("/challenge?pass=1"))
    assert response.ok, response.error
    assert response.engine == "browser" and response.markdown is not None
    assert response.markdown.startswith("# How Lighthouses Work")
    assert [a.outcome for a in response.attempts] == ["escalated", "ok"]


async def test_a_challenge_passed_before_the_page_ever_loaded_yields_the_page(
    service: Fetcher, origin: FixtureServer
) -> None:
    # The challenge reloads while the browser still waits for its `load` (its vendor script is held
    # until the reload arrives): the document then shown is the article, with the reload's 200, and
    # is read as such — not taken for the challenge by the first answer's 403.
    response = await fetch(service, origin.url("/challenge?pass=1&hold=early"))
    assert response.ok, response.error
    assert response.status_code == 200 and response.markdown is not None
    assert response.markdown.startswith("# How Lighthouses Work")
    assert [a.outcome for a in response.attempts] == ["escalated", "ok"]
    assert origin.hits["/challenge"] == 3  # the HTTP engine's, the browser's, the reload


# --- quarantine ------------------------------------------------------------------------------


async def test_a_shrunken_page_is_quarantined_then_approved(service: Fetcher, origin: FixtureServer) -> None:
    url = origin.url("/shrinking")
    good = await fetch(service, url, formats=["text"])
    assert good.ok and good.content is not None and good.content.total_chars > 50_000

    origin.shrunk.set()
    suspect = await fetch(service, url, formats=["text"], max_age_s=0, allow_stale=False)
    assert error_kind(suspect) == "suspect_content" and suspect.error is not None
    item_id = suspect.error.quarantine_id
    assert item_id is not None and "shrunk" in suspect.error.message

    # With the last good copy allowed, the agent gets that copy, flagged, instead of the fragment.
    degraded = await fetch(service, url, formats=["text"], max_age_s=0)
    assert degraded.ok and degraded.stale and degraded.live_error is not None
    assert degraded.live_error.kind == "suspect_content" and degraded.text == good.text

    listed = await service.quarantined()
    assert {item.id for item in listed.items} >= {item_id} and listed.total == 2
    held = await service.quarantined_item(item_id)
    assert held is not None and held.findings[0].startswith("shrunk:") and held.text_chars < 200

    decision = await service.approve(item_id)
    # "shrunk" is not accepted for the URL: the fragment is the good copy now, so it is what the
    # next fetch is measured against (a page that shrinks again is held again).
    assert decision is not None and decision.decision == "approved" and decision.accepted == []
    cached = await fetch(service, url, formats=["text"], max_age_s=3600)
    assert cached.source == "cache" and cached.text is not None and len(cached.text) < 200
    accepted = await fetch(service, url, formats=["text"], max_age_s=0, allow_stale=False)
    assert accepted.ok and accepted.source == "live" and accepted.text == cached.text
    assert await service.approve(item_id) is None  # decided once


async def test_a_rejected_item_leaves_the_good_copy(service: Fetcher, origin: FixtureServer) -> None:
    url = origin.url("/shrinking?r=1")
    good = await fetch(service, url, formats=["text"])
    origin.shrunk.set()
    suspect = await fetch(service, url, formats=["text"], max_age_s=0, allow_stale=False)
    assert suspect.error is not None and suspect.error.quarantine_id is not None
    decision = await service.reject(suspect.error.quarantine_id)
    assert decision is not None and decision.decision == "rejected"
    assert await service.quarantined_item(suspect.error.quarantine_id) is None
    cached = await fetch(service, url, formats=["text"], max_age_s=3600)
    assert cached.source == "cache" and cached.text == good.text
    again = await fetch(service, url, formats=["text"], max_age_s=0, allow_stale=False)
    assert error_kind(again) == "suspect_content"  # still judged against the good copy


async def test_on_suspect_return_answers_the_flagged_result(service: Fetcher, origin: FixtureServer) -> None:
    url = origin.url("/shrinking?s=1")
    assert (await fetch(service, url, formats=["text"])).ok
    origin.shrunk.set()
    flagged = await fetch(service, url, formats=["text"], max_age_s=0, on_suspect="return")
    assert flagged.ok and flagged.quality is not None and flagged.quality.verdict == "suspect"
    assert "shrunk" in flagged.quality.signals and "quarantine item" in flagged.warnings[0]
    assert flagged.text is not None and flagged.text.startswith("A Very Long Article")
    cached = await fetch(service, url, formats=["text"], max_age_s=3600)
    assert cached.content is not None and cached.content.total_chars > 50_000  # the suspect one was not cached


# --- the REST endpoints --------------------------------------------------------------------------


async def test_hosts_and_quarantine_over_the_api(tmp_path: Path, origin: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1, retry_attempts=1, breaker_window=2, breaker_min_calls=2)
    host = host_key(origin.base_url)
    async with running(settings) as (client, _):
        fresh = HostStatus.model_validate((await client.get(f"/v1/hosts/{host}")).json())
        assert fresh.state == "available" and fresh.calls == 0

        url = origin.url("/shrinking?api=1")
        assert (await client.post("/v1/fetch", json={"url": url, "formats": ["text"]})).json()["ok"]
        origin.shrunk.set()
        answer = await client.post(
            "/v1/fetch", json={"url": url, "formats": ["text"], "max_age_s": 0, "allow_stale": False}
        )
        assert answer.status_code == 502
        suspect = FetchResponse.model_validate(answer.json())
        assert suspect.error is not None and suspect.error.kind == "suspect_content"
        item_id = suspect.error.quarantine_id

        listed = QuarantineList.model_validate((await client.get("/v1/quarantine")).json())
        assert [item.id for item in listed.items] == [item_id] and listed.total == 1
        assert (await client.get(f"/v1/quarantine/{item_id}")).json()["findings"][0].startswith("shrunk:")
        approved = await client.post(f"/v1/quarantine/{item_id}/approve")
        assert approved.status_code == 200 and approved.json()["accepted"] == []
        assert (await client.post(f"/v1/quarantine/{item_id}/reject")).status_code == 404
        assert (await client.get(f"/v1/quarantine/{item_id}")).status_code == 404

        origin.failing.set()
        for _ in range(2):
            await client.post("/v1/fetch", json={"url": origin.url("/flaky"), "allow_stale": False})
        status = HostStatus.model_validate((await client.get(f"/v1/hosts/{host}")).json())
        assert status.state == "unavailable" and status.circuit == "open"
        assert status.summary.startswith(
            f"1 of the last 3 fetches of {host} got an HTTP error (503); the circuit opened"
        )
        refused = await client.post("/v1/fetch", json={"url": origin.url("/flaky")})
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["kind"] == "circuit_open"

        health = Health.model_validate((await client.get("/v1/health")).json())
        assert [h.host for h in health.hosts] == [host] and health.quarantined == 0
        assert [h.host for h in (HostStatus.model_validate(h) for h in (await client.get("/v1/hosts")).json())] == [
            host
        ]


# --- robots.txt ------------------------------------------------------------------------------------

ROBOTS = "User-agent: *\nDisallow: /private\n\nUser-agent: browser-service\nDisallow: /members\nAllow: /members/open\n"


async def test_robots_txt_is_obeyed_when_asked(service: Fetcher, origin: FixtureServer) -> None:
    origin.robots = (200, ROBOTS)
    refused = await fetch(service, origin.url("/members/article.html"), respect_robots=True)
    assert error_kind(refused) == "robots_disallowed" and refused.error is not None
    assert not refused.error.retryable and "/robots.txt disallows /members/article.html" in refused.error.message
    assert origin.hits["/members/article.html"] == 0 and refused.attempts == []
    assert (await fetch(service, origin.url("/article.html"), respect_robots=True)).ok  # our group wins over *
    assert error_kind(await fetch(service, origin.url("/private"), respect_robots=True)) == "not_found"
    assert origin.hits["/robots.txt"] == 1  # read once per origin


async def test_robots_txt_is_not_consulted_by_default(service: Fetcher, origin: FixtureServer) -> None:
    origin.robots = (200, "User-agent: *\nDisallow: /\n")
    assert (await fetch(service, origin.url("/article.html"))).ok
    assert origin.hits["/robots.txt"] == 0


@pytest.mark.parametrize("robots", [None, (500, "oops"), (200, "")])
async def test_missing_or_broken_robots_txt_allows(
    service: Fetcher, origin: FixtureServer, robots: tuple[int, str] | None
) -> None:
    origin.robots = robots
    assert (await fetch(service, origin.url("/article.html"), respect_robots=True)).ok
