"""Two replicas act as one: two ``browser-service serve`` processes on their own ports and cache
directories, sharing one real redis-server.

* a page cached through A is a cache hit through B;
* a host failing through A is ``circuit_open`` on B, which does not contact it;
* a session created through A signs in through B and is signed in through A;
* a host's concurrency cap holds across both: while A's fetch holds the host's one slot, B's is
  refused with ``overloaded`` without contacting the host, and goes once A's is over;
* the trace of a fetch through A is found through B;
* a result held in quarantine through B is reviewed and approved through A;
* stopping A (SIGTERM) loses no request sent to B, in flight or after.

Every step waits on something it can observe (a log line, the origin's count of arrivals, an
answer); nothing sleeps. The replicas fetch over HTTP only, so they do not launch Chromium.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_service.contract import FetchResponse, Health, HostStatus, QuarantineList, SessionInfo
from browser_service.guard import host_key
from tests.redis_server import RedisServer
from tests.serving import ServeProcess
from tests.site import FixtureServer


def by_name(origin: FixtureServer, path: str) -> str:
    """The origin as ``localhost``: a host of its own for the breakers. Only the breaker test uses
    ``127.0.0.1``, so the circuit it opens is judged on its own calls alone."""
    return origin.url(path).replace("127.0.0.1", "localhost")


class Replica(ServeProcess):
    """``browser-service serve`` on a free loopback port, sharing ``redis_url``."""

    def __init__(self, name: str, tmp: Path, origin: FixtureServer, redis_url: str) -> None:
        address = origin.base_url.removeprefix("http://")
        env = {
            # The origin by address and by name: one host for the breaker tests, another for the rest.
            "BROWSER_SERVICE_ALLOW": f"{address},localhost:{address.rsplit(':', 1)[1]}",
            "BROWSER_SERVICE_CACHE_DIR": str(tmp / name / "cache"),  # nothing shared through the disk
            "BROWSER_SERVICE_REDIS_URL": redis_url,
            "BROWSER_SERVICE_REDIS_TIMEOUT_MS": "5000",  # a loaded test machine; the default is 500
            "BROWSER_SERVICE_PRELAUNCH": "false",
            "BROWSER_SERVICE_RETRY_ATTEMPTS": "1",
            "BROWSER_SERVICE_HOST_CONCURRENCY": "1",  # one fetch at a time per host, across both
            "BROWSER_SERVICE_BREAKER_WINDOW": "4",
            "BROWSER_SERVICE_BREAKER_MIN_CALLS": "2",
            "BROWSER_SERVICE_BREAKER_OPEN_S": "600",
            "BROWSER_SERVICE_SHUTDOWN_GRACE_S": "10",
        }
        super().__init__(env, name)

    def fetch(self, url: str, **fields: Any) -> tuple[int, FetchResponse]:
        body = {"url": url, "render": "http", "timeout_ms": 30_000} | fields
        answer = httpx.post(f"{self.url}/v1/fetch", json=body, timeout=60, trust_env=False)
        return answer.status_code, FetchResponse.model_validate(answer.json())

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, trust_env=False)

    def stop(self) -> None:
        self.kill()


@pytest.fixture(scope="module")
def origin() -> Iterator[FixtureServer]:
    server = FixtureServer().start()  # a host of its own: its breaker state is this module's
    yield server
    server.close()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, origin: FixtureServer, redis_server: RedisServer
) -> Iterator[tuple[Replica, Replica]]:
    redis_server.flush()
    tmp = tmp_path_factory.mktemp("replicas")
    a = Replica("A", tmp, origin, redis_server.url)
    b = Replica("B", tmp, origin, redis_server.url)
    try:
        a.wait_for("Application startup complete")
        b.wait_for("Application startup complete")
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_both_replicas_report_the_shared_state(replicas: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    for replica in replicas:
        health = Health.model_validate(replica.get("/v1/health").json())
        assert health.cache.backend == "redis"
        assert health.shared_state is not None
        assert (health.shared_state.state, health.shared_state.url) == ("available", redis_server.url)


def test_a_page_cached_through_a_is_a_hit_through_b(replicas: tuple[Replica, Replica], origin: FixtureServer) -> None:
    a, b = replicas
    status, live = a.fetch(by_name(origin, "/article.html"), max_age_s=0)
    assert status == 200 and live.ok and live.source == "live"
    assert origin.hits["/article.html"] == 1
    status, cached = b.fetch(by_name(origin, "/article.html"), max_age_s=3600)
    assert status == 200 and cached.ok and cached.source == "cache" and cached.attempts == []
    assert cached.markdown == live.markdown and cached.content_sha256 == live.content_sha256
    assert origin.hits["/article.html"] == 1  # B never went to the origin


def test_a_host_failing_through_a_is_open_on_b(replicas: tuple[Replica, Replica], origin: FixtureServer) -> None:
    a, b = replicas
    origin.failing.set()
    try:
        for _ in range(2):  # 2 calls, both failing: the window's verdict opens the circuit
            status, failed = a.fetch(origin.url("/flaky"), max_age_s=0)
            assert status == 502 and failed.error is not None
            assert (failed.error.kind, failed.error.status_code) == ("http_error", 503)
        status, refused = b.fetch(origin.url("/flaky"), max_age_s=0)
    finally:
        origin.failing.clear()
    assert status == 503 and refused.error is not None
    assert (refused.error.kind, refused.error.host_state) == ("circuit_open", "unavailable")
    host = host_key(origin.base_url)
    assert refused.error.message.startswith(
        f"{host} is failing, so requests to it are paused: all of the last 2 fetches of {host} got HTTP errors "
        "(503); the circuit opened"
    )
    assert origin.hits["/flaky"] == 2  # B refused without contacting the host
    hosts = [HostStatus.model_validate(h) for h in b.get("/v1/hosts").json()]
    named = host_key(by_name(origin, "/"))  # fetched once through A (the cache test): B lists it too
    assert [(h.host, h.circuit, h.calls, h.failures) for h in hosts] == [(host, "open", 2, 2), (named, "closed", 1, 0)]


def test_a_hosts_one_slot_is_shared_by_both_replicas(replicas: tuple[Replica, Replica], origin: FixtureServer) -> None:
    a, b = replicas
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(a.fetch, by_name(origin, "/hold?id=cap-a"), max_age_s=0)
        origin.wait_until(lambda: origin.hits["/hold?id=cap-a"] == 1)  # A holds the host's slot
        status, refused = b.fetch(by_name(origin, "/hold?id=cap-b"), max_age_s=0, timeout_ms=1500)
        origin.release("cap-a")
        assert in_flight.result(timeout=60)[1].ok
    assert status == 503 and refused.error is not None and refused.error.kind == "overloaded"
    assert refused.error.phase == "queue"
    assert refused.error.message.startswith("Requests to localhost:") and "1 at a time across replicas" in (
        refused.error.message
    )
    assert origin.hits["/hold?id=cap-b"] == 0  # never contacted
    origin.release("cap-b")
    status, page = b.fetch(by_name(origin, "/hold?id=cap-b"), max_age_s=0)
    assert status == 200 and page.ok  # the slot is free again
    assert origin.hits["/hold?id=cap-b"] == 1


def test_the_trace_of_a_fetch_through_a_is_found_through_b(
    replicas: tuple[Replica, Replica], origin: FixtureServer
) -> None:
    a, b = replicas
    status, answer = a.fetch(by_name(origin, "/article.html?trace=1"), max_age_s=0)
    assert status == 200 and answer.ok and answer.trace_id is not None
    through_a, through_b = a.get(f"/v1/traces/{answer.trace_id}"), b.get(f"/v1/traces/{answer.trace_id}")
    assert through_a.status_code == through_b.status_code == 200
    assert through_b.json() == through_a.json()  # A's own ring and Redis hold the same trace
    assert through_b.json()["outcome"] == "ok" and through_b.json()["request"]["url"].endswith("?trace=1")
    missing = b.get("/v1/traces/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "the last 10000 fetches of all replicas" in missing.text


def test_a_result_held_through_b_is_approved_through_a(
    replicas: tuple[Replica, Replica], origin: FixtureServer
) -> None:
    a, b = replicas
    url = by_name(origin, "/shrinking?replicas=1")
    status, good = a.fetch(url, formats=["text"], max_age_s=0)
    assert status == 200 and good.ok
    origin.shrunk.set()
    try:
        # B judges against the good copy A cached (Redis), and holds the fragment where A sees it.
        status, suspect = b.fetch(url, formats=["text"], max_age_s=0, allow_stale=False)
        assert status == 502 and suspect.error is not None and suspect.error.kind == "suspect_content"
        item_id = suspect.error.quarantine_id
        assert item_id is not None
        listed = QuarantineList.model_validate(a.get("/v1/quarantine").json())
        assert [item.id for item in listed.items] == [item_id] and listed.total == 1
        approved = httpx.post(f"{a.url}/v1/quarantine/{item_id}/approve", timeout=30, trust_env=False)
        assert approved.status_code == 200 and approved.json()["decision"] == "approved"
        assert httpx.post(f"{b.url}/v1/quarantine/{item_id}/reject", timeout=30, trust_env=False).status_code == 404
        # The approved fragment is the good copy now, so the fragment passes through B.
        status, after = b.fetch(url, formats=["text"], max_age_s=0, allow_stale=False)
        assert status == 200 and after.ok and after.text is not None and len(after.text) < 200
    finally:
        origin.shrunk.clear()


def test_a_session_created_on_a_works_on_b(replicas: tuple[Replica, Replica], origin: FixtureServer) -> None:
    a, b = replicas
    created = httpx.post(f"{a.url}/v1/sessions", json={}, timeout=30, trust_env=False)
    session = SessionInfo.model_validate(created.json())
    status, welcome = b.fetch(by_name(origin, "/login?user=alice"), session=session.id)
    assert status == 200 and welcome.ok and welcome.final_url is not None
    assert welcome.final_url.endswith("/welcome")
    status, page = a.fetch(by_name(origin, "/members"), session=session.id)
    assert status == 200 and page.ok and page.markdown is not None
    assert page.markdown.startswith("# Members area\n\nWelcome back, alice.")
    held = SessionInfo.model_validate(b.get(f"/v1/sessions/{session.id}").json())
    assert (held.requests, held.cookies) == (2, 1)


def test_stopping_a_loses_no_request_sent_to_b(replicas: tuple[Replica, Replica], origin: FixtureServer) -> None:
    a, b = replicas
    page = by_name(origin, "/hold?id=replica-b")
    with ThreadPoolExecutor(1) as pool:
        in_flight: Future[tuple[int, FetchResponse]] = pool.submit(b.fetch, page, max_age_s=0)
        origin.wait_until(lambda: origin.hits["/hold?id=replica-b"] == 1)  # at the origin, through B
        a.process.send_signal(signal.SIGTERM)
        assert a.process.wait(timeout=60) == 0
        origin.release("replica-b")
        status, answer = in_flight.result(timeout=60)
    assert status == 200 and answer.ok and answer.source == "live"
    assert (answer.markdown or "").startswith("# How Lighthouses Work")
    status, after = b.fetch(by_name(origin, "/article.html"), max_age_s=0)
    assert status == 200 and after.ok  # B goes on alone
