"""The shared-state engine against a real redis-server: two "replicas" are two sets of stores on one
Redis (each with its own link, as two processes would have), and what one does the other sees.

Cache entries, breaker circuits and half-open trial places, a host's Retry-After and pacing,
session records and their turns, traces, quarantine items; and Redis going away: every store
answers at once (a miss, the per-process breakers, a typed error for sessions, a 503 for reviews),
the health report says so, and it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from browser_service.breaker import BreakerConfig, Breakers, CircuitOpenRefusal
from browser_service.breaker_shared import RedisBreakers
from browser_service.cache import CacheEntry, RedisCacheStore
from browser_service.contract import FetchRequest, FetchResponse, QuarantineItem
from browser_service.deadline import Deadline
from browser_service.errors import FetchTimeout, Overloaded, SessionNotFound
from browser_service.fetcher import Fetcher
from browser_service.limits import HostLimits, LimitsConfig, LimitWait, RetryAfterActive
from browser_service.limits_shared import RedisHostLimits
from browser_service.quarantine import new_item
from browser_service.quarantine_shared import RedisQuarantineStore
from browser_service.sessions import RedisSessionStore
from browser_service.shared import RedisLink, SharedUnavailable
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_pool import until
from tests.redis_server import RedisServer
from tests.site import FixtureServer


@pytest.fixture
async def links(redis_server: RedisServer) -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    redis_server.flush()
    # A loaded 2-core test machine can take longer than the 0.5 s default for a call.
    a, b = RedisLink(redis_server.url, timeout_s=5), RedisLink(redis_server.url, timeout_s=5)
    yield a, b
    await a.aclose()
    await b.aclose()


def _entry(body: str = "<html><body><p>stored</p></body></html>") -> CacheEntry:
    return CacheEntry(
        url="http://example.test/",
        final_url="http://example.test/",
        fetched_at=time.time(),
        status_code=200,
        content_type="text/html",
        engine="http",
        is_html=True,
        body=body,
        title="Stored",
    )


# --- cache ---------------------------------------------------------------------------------------


async def test_a_page_cached_through_one_replica_is_read_through_another(
    links: tuple[RedisLink, RedisLink], redis_server: RedisServer
) -> None:
    a, b = RedisCacheStore(links[0], ttl_s=600), RedisCacheStore(links[1], ttl_s=600)
    entry = _entry()
    assert await b.get("k1") is None
    await a.put("k1", entry)
    assert await b.get("k1") == entry
    with redis_server.client() as client:
        assert 590 <= client.ttl("browser-service:cache:k1") <= 600  # Redis drops it once unservable
        client.set("browser-service:cache:k2", b"{not an entry")
    assert await b.get("k2") is None  # another version's value: a miss, not a failure
    health = b.health()
    assert (health.backend, health.location) == ("redis", redis_server.url)


# --- breakers ------------------------------------------------------------------------------------


def _breakers(link: RedisLink, **config: float) -> RedisBreakers:
    values: dict[str, float] = {"window": 10, "minimum_calls": 3, "failure_rate": 0.5, "open_s": 30} | config
    settings = BreakerConfig(**values)  # type: ignore[arg-type]
    return RedisBreakers(link, settings, Breakers(settings), trial_lease_s=300)


async def test_a_circuit_opened_through_one_replica_is_open_on_the_other(
    links: tuple[RedisLink, RedisLink],
) -> None:
    a, b = _breakers(links[0]), _breakers(links[1])
    host = "shop.example"
    for _ in range(3):
        permit = await a.before(host)
        await a.record(host, "http_error 503", failure=True, permit=permit)
    with pytest.raises(CircuitOpenRefusal) as refused:
        await b.before(host)
    assert refused.value.state == "unavailable" and 29 < refused.value.retry_after_s <= 30
    assert refused.value.summary.startswith(
        "all of the last 3 fetches of shop.example got HTTP errors (503); the circuit opened 0 s ago; next trial in"
    )
    status = await b.state(host)
    assert (status.circuit, status.state, status.calls, status.failures) == ("open", "unavailable", 3, 3)
    assert [h.host for h in await b.hosts()] == [host]
    assert len(b.local) == 0  # nothing fell back to per-process state


async def test_outcomes_from_both_replicas_at_once_are_all_counted(links: tuple[RedisLink, RedisLink]) -> None:
    a, b = _breakers(links[0], minimum_calls=100, window=100), _breakers(links[1], minimum_calls=100, window=100)
    host = "busy.example"

    async def call(breakers: RedisBreakers, failure: bool) -> None:
        permit = await breakers.before(host)
        await breakers.record(host, "timeout" if failure else "ok", failure=failure, permit=permit)

    await asyncio.gather(*(call(a if i % 2 else b, i % 3 == 0) for i in range(30)))
    status = await a.state(host)
    assert (status.calls, status.failures) == (30, 10)  # WATCH/MULTI: no update lost


async def test_half_open_trial_places_are_shared(links: tuple[RedisLink, RedisLink]) -> None:
    # open_s=0: an open circuit is half-open at the next call, so the test needs no waiting.
    a, b = _breakers(links[0], open_s=0), _breakers(links[1], open_s=0)
    host = "flaky.example"
    for _ in range(3):
        await a.record(host, "timeout", failure=True, permit=await a.before(host))
    first, second = await a.before(host), await b.before(host)
    assert first.trial and second.trial
    with pytest.raises(CircuitOpenRefusal) as busy:  # both places taken, one through each replica
        await a.before(host)
    assert busy.value.state == "degraded" and busy.value.retry_after_s == 1.0
    await b.release(host, second)  # a cancelled trial gives its place back, for every replica
    third = await a.before(host)
    assert third.trial
    await a.record(host, "ok", failure=False, permit=first)
    assert (await b.state(host)).circuit == "half_open"
    await b.record(host, "ok", failure=False, permit=third)
    status = await b.state(host)
    assert (status.circuit, status.calls) == ("closed", 0)  # closed, window cleared


async def test_a_trial_whose_replica_vanished_frees_its_place_after_the_lease(
    links: tuple[RedisLink, RedisLink],
) -> None:
    config = BreakerConfig(window=10, minimum_calls=3, open_s=0, half_open_calls=1)
    a = RedisBreakers(links[0], config, Breakers(config), trial_lease_s=-1)  # every lease already over
    host = "gone.example"
    for _ in range(3):
        await a.record(host, "timeout", failure=True, permit=await a.before(host))
    assert (await a.before(host)).trial  # taken, never ended (its replica died)
    assert (await a.before(host)).trial  # the lease ran out: the place is free again


# --- Retry-After and pacing ----------------------------------------------------------------------


async def test_a_retry_after_noted_through_one_replica_holds_on_the_other(
    links: tuple[RedisLink, RedisLink],
) -> None:
    a = HostLimits(LimitsConfig(), shared=RedisHostLimits(links[0]))
    b = HostLimits(LimitsConfig(), shared=RedisHostLimits(links[1]))
    host = "api.example"
    await a.share_retry_after(host, a.note_retry_after(host, 60))
    with pytest.raises(RetryAfterActive) as pause:
        async with b.slot(host, 5.0):
            pytest.fail("the host asked for a pause")
    assert 59 < pause.value.retry_after_s <= 60
    assert b.in_use(host) == 0  # the local slot was given back
    async with b.slot("other.example", 5.0):  # other hosts are not held
        pass


async def test_pacing_is_one_schedule_across_replicas(links: tuple[RedisLink, RedisLink]) -> None:
    config = LimitsConfig(min_interval_s=10)
    a = HostLimits(config, shared=RedisHostLimits(links[0]))
    b = HostLimits(config, shared=RedisHostLimits(links[1]))
    host = "paced.example"
    async with a.slot(host, 5.0):  # the first start is at once; the next is booked 10 s later
        pass
    with pytest.raises(LimitWait) as wait:
        async with b.slot(host, 5.0):
            pytest.fail("B's start is 10 s after A's")
    assert wait.value.reason == "pacing" and 9 < wait.value.wait_s <= 10


async def test_a_hosts_concurrency_is_one_cap_across_replicas(links: tuple[RedisLink, RedisLink]) -> None:
    config = LimitsConfig(per_host_concurrency=2)
    a = HostLimits(config, shared=RedisHostLimits(links[0]))
    b = HostLimits(config, shared=RedisHostLimits(links[1]))
    host = "capped.example"
    async with contextlib.AsyncExitStack() as held:
        first = await held.enter_async_context(contextlib.AsyncExitStack())
        await first.enter_async_context(a.slot(host, 5.0))
        await held.enter_async_context(a.slot(host, 5.0))  # A holds both of the host's slots
        with pytest.raises(LimitWait) as full:
            async with b.slot(host, 0.3):
                pytest.fail("the host's two slots are held through A")
        assert full.value.reason == "concurrency" and full.value.wait_s >= 0.3
        assert b.in_use(host) == 0  # B's local slot was given back
        async with b.slot("other.example", 5.0):  # other hosts are not held
            pass

        order: list[str] = []

        async def through_b() -> None:
            async with b.slot(host, 10.0):
                order.append("B entered")

        waiting = asyncio.create_task(through_b())
        await until(lambda: b.in_use(host) == 1)  # B holds its local slot: it waits for a shared one
        order.append("A left")
        await first.aclose()
        await waiting
    assert order == ["A left", "B entered"]


async def test_a_slot_whose_replica_vanished_frees_itself_when_its_lease_runs_out(
    links: tuple[RedisLink, RedisLink],
) -> None:
    host = "vanished.example"
    gone = RedisHostLimits(links[0], lease_grace_s=0)
    entry = await gone.enter(host, 1, 0.0, 0.3)  # taken with a 0.3 s deadline, never given back
    assert entry.token is not None
    b = HostLimits(LimitsConfig(per_host_concurrency=1), shared=RedisHostLimits(links[1]))
    started = time.monotonic()
    async with b.slot(host, 10.0):
        waited = time.monotonic() - started
    assert 0.2 <= waited < 5  # not before the lease ran out, and soon after


async def test_a_cancelled_request_gives_its_shared_slot_back(links: tuple[RedisLink, RedisLink]) -> None:
    config = LimitsConfig(per_host_concurrency=1)
    a = HostLimits(config, shared=RedisHostLimits(links[0]))
    b = HostLimits(config, shared=RedisHostLimits(links[1]))
    host = "cancelled.example"
    inside = asyncio.Event()

    async def hold_forever() -> None:
        async with a.slot(host, 60.0):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold_forever())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.in_use(host) == 0
    async with b.slot(host, 5.0):  # free across replicas now, not after the 70 s lease
        pass


# --- sessions ------------------------------------------------------------------------------------


def _sessions(link: RedisLink, **limits: int) -> RedisSessionStore:
    values = {"default_ttl_s": 600, "max_ttl_s": 3600, "max_sessions": 3} | limits
    return RedisSessionStore(link, **values)


async def test_a_session_created_on_one_replica_is_used_on_the_other(links: tuple[RedisLink, RedisLink]) -> None:
    a, b = _sessions(links[0]), _sessions(links[1])
    info = await a.create(ttl_s=120)
    async with b.use(info.id, Deadline(5)) as live:
        live.add_cookies("http://shop.example/", {"member": "alice"})
    held = await a.info(info.id)
    assert (held.requests, held.cookies, held.cookie_domains) == (1, 1, ["shop.example"])
    async with a.use(info.id, Deadline(5)) as live:
        assert [c["value"] for c in live.state["cookies"]] == ["alice"]
    await b.delete(info.id)
    with pytest.raises(SessionNotFound):
        await a.info(info.id)


async def test_a_sessions_turns_are_taken_across_replicas(links: tuple[RedisLink, RedisLink]) -> None:
    a, b = _sessions(links[0]), _sessions(links[1])
    session = (await a.create()).id
    entered = asyncio.Event()
    leave = asyncio.Event()

    async def hold() -> None:
        async with a.use(session, Deadline(10)):
            entered.set()
            await leave.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    with pytest.raises(FetchTimeout) as queued:  # B waits for A's request, within its own deadline
        async with b.use(session, Deadline(0.3)):
            pytest.fail("A holds the session")
    assert queued.value.phase == "queue"
    leave.set()
    await holder
    async with b.use(session, Deadline(5)):  # A's turn is over: B's comes
        pass
    assert (await a.info(session)).requests == 2


async def test_the_number_of_sessions_is_bounded_across_replicas(links: tuple[RedisLink, RedisLink]) -> None:
    a, b = _sessions(links[0], max_sessions=2), _sessions(links[1], max_sessions=2)
    await a.create()
    await b.create()
    with pytest.raises(Overloaded) as full:
        await a.create()
    assert "maximum of 2 sessions" in full.value.message


# --- Redis going away ----------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path, redis_server: RedisServer) -> Iterator[RedisServer]:
    """A redis-server this test may stop and start again (same port)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_when_redis_stops_every_store_answers_at_once_and_it_comes_back(own_redis: RedisServer) -> None:
    link = RedisLink(own_redis.url, timeout_s=5, retry_s=0)  # no back-off: the test sees Redis return at once
    cache = RedisCacheStore(link, ttl_s=600)
    breakers = _breakers(link)
    limits = HostLimits(LimitsConfig(), shared=RedisHostLimits(link))
    sessions = _sessions(link)
    await cache.put("k", _entry())
    session = (await sessions.create()).id
    assert (await link.health()).state == "available"

    own_redis.stop()
    with pytest.raises(SharedUnavailable):
        await cache.get("k")  # the Fetcher reads this as a miss
    permit = await breakers.before("down.example")  # the per-process breakers take over
    assert permit.local is not None
    await breakers.record("down.example", "ok", failure=False, permit=permit)
    assert len(breakers.local) == 1
    async with limits.slot("down.example", 5.0):  # the per-process limits alone
        pass
    with pytest.raises(Overloaded) as refused:
        await sessions.info(session)
    assert refused.value.message.startswith("The session store (Redis) did not answer")
    health = await link.health()
    assert health.state == "unavailable" and health.error is not None

    own_redis.start()  # the same address again, empty (and stopped by the fixture again)
    assert (await link.health()).state == "available"
    assert await cache.get("k") is None  # an empty Redis: a miss
    await link.aclose()


async def test_a_fetcher_without_redis_still_answers_and_reports_it(
    tmp_path: Path, own_redis: RedisServer, site: FixtureServer
) -> None:
    async with Fetcher(make_settings(tmp_path, redis_url=own_redis.url, redis_timeout_ms=5000)) as service:
        request = FetchRequest.model_validate({"url": site.url("/article.html"), "render": "http"})
        first = await service.fetch(request)
        assert first.ok and first.source == "live"
        again = await service.fetch(request.model_copy(update={"max_age_s": 3600}))
        assert again.source == "cache"  # through Redis
        assert (await service.health()).shared_state is not None

        own_redis.stop()
        answer = await service.fetch(request.model_copy(update={"max_age_s": 3600}))
        assert answer.ok and answer.source == "live"  # the cache is a miss, the fetch goes on
        health = await service.health()
        assert health.status == "degraded" and health.cache.backend == "redis"
        assert health.shared_state is not None and health.shared_state.state == "unavailable"


# --- traces --------------------------------------------------------------------------------------


async def test_traces_are_found_through_the_other_replica_and_bounded_by_count(
    tmp_path: Path, redis_server: RedisServer, site: FixtureServer
) -> None:
    redis_server.flush()
    shared = {"redis_url": redis_server.url, "redis_timeout_ms": 5000, "shared_trace_buffer": 2}
    async with (
        Fetcher(make_settings(tmp_path / "a", **shared)) as a,
        Fetcher(make_settings(tmp_path / "b", **shared)) as b,
    ):
        answers = [
            await a.fetch(FetchRequest.model_validate({"url": site.url(f"/article.html?t={i}"), "render": "http"}))
            for i in range(3)
        ]
        ids = [answer.trace_id for answer in answers]
        assert all(answer.ok for answer in answers) and None not in ids
        assert b.telemetry.traces.get(ids[2]) is None  # not in B's own ring: B reads Redis
        for trace_id in ids[1:]:
            assert await b.telemetry.find(trace_id) == a.telemetry.traces.get(trace_id)
        assert await b.telemetry.find(ids[0]) is None  # the oldest beyond the bound of 2 is gone
        assert await a.telemetry.find(ids[0]) is not None  # A's own ring still has it


async def test_when_redis_stops_trace_and_quarantine_lookups_say_so_and_fetches_go_on(
    tmp_path: Path, own_redis: RedisServer, site: FixtureServer
) -> None:
    settings = make_settings(tmp_path, redis_url=own_redis.url, redis_timeout_ms=5000)
    async with running(settings) as (client, _):
        request = {"url": site.url("/article.html?redis=down"), "render": "http"}
        before = FetchResponse.model_validate((await client.post("/v1/fetch", json=request)).json())
        own_redis.stop()
        after = FetchResponse.model_validate((await client.post("/v1/fetch", json=request)).json())
        assert before.ok and after.ok and after.trace_id is not None
        # This replica's own traces are still served; one it does not have may be on another replica.
        assert (await client.get(f"/v1/traces/{after.trace_id}")).json()["trace_id"] == after.trace_id
        unknown = await client.get("/v1/traces/0123456789abcdef0123456789abcdef")
        assert unknown.status_code == 503
        assert "and Redis, where every replica's are, did not answer" in unknown.json()["detail"]
        review = await client.get("/v1/quarantine")  # the quarantine is in Redis too
        assert review.status_code == 503 and review.headers["retry-after"] == "1"
        assert review.json()["detail"].startswith("Redis, where the replicas' shared state is, did not answer")


# --- quarantine ----------------------------------------------------------------------------------


async def test_an_item_held_through_one_replica_is_decided_once_through_either(
    links: tuple[RedisLink, RedisLink],
) -> None:
    a, b = RedisQuarantineStore(links[0], max_items=2), RedisQuarantineStore(links[1], max_items=2)

    async def hold(store: RedisQuarantineStore, body: str = _entry().body) -> QuarantineItem:
        findings = ["thin: 5 characters"]
        new = new_item(
            key="k", entry=_entry(body), text="short", findings=findings, codes=["thin"], baseline_chars=None
        )
        await store.hold(new)
        return new.item

    first = await hold(a)
    second = await hold(a, "<p>second</p>")
    items, total = await b.newest(limit=10)
    assert [item.id for item in items] == [second.id, first.id] and total == 2 == await b.count()
    got = await b.get(first.id)
    assert got is not None and got.item == first and got.entry.body == _entry().body and got.codes == ["thin"]

    third = await hold(b)
    assert await a.get(first.id) is None  # the oldest beyond the bound of 2 is gone
    assert [item.id for item in (await a.newest(limit=10))[0]] == [third.id, second.id]

    taken = await asyncio.gather(a.take(second.id), b.take(second.id))  # two reviewers at once
    assert sorted(held is None for held in taken) == [False, True]
    assert await a.accept(second.url, ["thin"]) == ["thin"]
    assert await b.accepted(second.url + "#fragment") == frozenset({"thin"})  # the URL normalised
    assert await b.accepted("http://other.test/") == frozenset()
