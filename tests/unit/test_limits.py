from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest

from browser_service import limits as limits_module
from browser_service.limits import HostLimits, LimitsConfig, LimitWait, RetryAfterActive, SharedEntry

HOST = "example.com"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (yields to the loop; never sleeps)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def waiting_is(limits: HostLimits, count: int) -> Callable[[], bool]:
    return lambda: limits.waiting(HOST) == count


async def hold(limits: HostLimits, host: str, entered: list[str], name: str, leave: asyncio.Event) -> None:
    async with limits.slot(host, 30):
        entered.append(name)
        await leave.wait()


# --- concurrency -----------------------------------------------------------------------------


async def test_concurrency_cap_makes_the_next_request_wait_until_a_release() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=2))
    entered: list[str] = []
    leave = {name: asyncio.Event() for name in "abc"}
    tasks = {name: asyncio.create_task(hold(limits, HOST, entered, name, leave[name])) for name in "abc"}
    await until(lambda: limits.waiting(HOST) == 1)
    assert entered == ["a", "b"] and limits.in_use(HOST) == 2
    leave["b"].set()
    await until(lambda: len(entered) == 3)
    assert entered == ["a", "b", "c"] and limits.in_use(HOST) == 2 and limits.waiting(HOST) == 0
    leave["a"].set()
    leave["c"].set()
    await asyncio.gather(*tasks.values())
    assert limits.in_use(HOST) == 0 and len(limits) == 0  # idle hosts are forgotten


async def test_other_hosts_are_not_limited() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    async with limits.slot("a.example", 30), limits.slot("b.example", 30):
        assert (limits.in_use("a.example"), limits.in_use("b.example")) == (1, 1)


async def test_waiters_enter_first_in_first_out() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    entered: list[str] = []
    leave = asyncio.Event()
    leave.set()  # each one leaves as soon as it is in
    gate = asyncio.Event()
    first = asyncio.create_task(hold(limits, HOST, entered, "first", gate))
    await until(lambda: entered == ["first"])
    names = [f"w{i}" for i in range(5)]
    tasks = []
    for queued, name in enumerate(names, start=1):
        tasks.append(asyncio.create_task(hold(limits, HOST, entered, name, leave)))
        await until(waiting_is(limits, queued))
    gate.set()
    await asyncio.gather(first, *tasks)
    assert entered == ["first", *names]


async def test_slot_released_to_a_waiter_is_not_taken_by_a_newcomer() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    entered: list[str] = []
    go = asyncio.Event()
    go.set()
    holder = limits.slot(HOST, 30)
    await holder.__aenter__()
    waiter = asyncio.create_task(hold(limits, HOST, entered, "waiter", go))
    await until(lambda: limits.waiting(HOST) == 1)
    await holder.__aexit__(None, None, None)  # hands the slot to the waiter, which has not run yet
    assert limits.in_use(HOST) == 1 and limits.waiting(HOST) == 0
    with pytest.raises(LimitWait):  # a newcomer arriving now finds the host full
        async with limits.slot(HOST, 0):
            pytest.fail("overtook the waiter")
    await waiter
    assert entered == ["waiter"] and limits.in_use(HOST) == 0


async def test_queue_wait_past_the_deadline_raises_limit_wait() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    async with limits.slot(HOST, 30):
        with pytest.raises(LimitWait) as waited:
            async with limits.slot(HOST, 0.02):
                pytest.fail("entered a full host")
        assert waited.value.reason == "concurrency"
        assert waited.value.wait_s >= 0.0
        assert limits.waiting(HOST) == 0 and limits.in_use(HOST) == 1
        with pytest.raises(LimitWait) as refused:
            async with limits.slot(HOST, 0):
                pytest.fail("entered a full host")
        assert (refused.value.reason, refused.value.wait_s) == ("concurrency", 0.0)
    assert limits.in_use(HOST) == 0 and len(limits) == 0


# --- cancellation ----------------------------------------------------------------------------


async def test_cancelled_waiter_leaves_the_queue_and_frees_nothing_it_did_not_hold() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    entered: list[str] = []
    gate, go = asyncio.Event(), asyncio.Event()
    go.set()
    holder = asyncio.create_task(hold(limits, HOST, entered, "holder", gate))
    await until(lambda: entered == ["holder"])
    cancelled = asyncio.create_task(hold(limits, HOST, entered, "cancelled", go))
    behind = asyncio.create_task(hold(limits, HOST, entered, "behind", go))
    await until(lambda: limits.waiting(HOST) == 2)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert limits.waiting(HOST) == 1 and limits.in_use(HOST) == 1
    gate.set()
    await asyncio.gather(holder, behind)
    assert entered == ["holder", "behind"]
    assert limits.in_use(HOST) == 0 and len(limits) == 0


async def test_waiter_cancelled_as_it_is_granted_hands_the_slot_on() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    entered: list[str] = []
    go = asyncio.Event()
    go.set()
    holder = limits.slot(HOST, 30)
    await holder.__aenter__()
    granted = asyncio.create_task(hold(limits, HOST, entered, "granted", go))
    behind = asyncio.create_task(hold(limits, HOST, entered, "behind", go))
    await until(lambda: limits.waiting(HOST) == 2)
    await holder.__aexit__(None, None, None)  # grants "granted" its slot without yielding to the loop
    granted.cancel()  # ... which is cancelled before it can run
    with pytest.raises(asyncio.CancelledError):
        await granted
    await behind
    assert entered == ["behind"]
    assert limits.in_use(HOST) == 0 and len(limits) == 0


async def test_cancelled_holder_releases_its_slot() -> None:
    limits = HostLimits(LimitsConfig(per_host_concurrency=1))
    entered: list[str] = []
    task = asyncio.create_task(hold(limits, HOST, entered, "holder", asyncio.Event()))
    await until(lambda: entered == ["holder"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limits.in_use(HOST) == 0 and len(limits) == 0
    async with limits.slot(HOST, 0):
        assert limits.in_use(HOST) == 1


async def test_cancelled_pacing_wait_gives_back_its_slot_and_reservation() -> None:
    clock = FakeClock()
    limits = HostLimits(LimitsConfig(per_host_concurrency=4, min_interval_s=30), clock=clock)
    async with limits.slot(HOST, 1):  # starts at once; the next start is reserved for +30 s
        pass
    entered: list[str] = []
    sleeper = asyncio.create_task(hold(limits, HOST, entered, "sleeper", asyncio.Event()))
    await until(lambda: limits.in_use(HOST) == 1)  # holds a slot, asleep until its start at +30 s
    with pytest.raises(LimitWait) as waited:
        async with limits.slot(HOST, 1):
            pytest.fail("started too early")
    assert (waited.value.reason, waited.value.wait_s) == ("pacing", 60.0)  # behind the sleeper's reservation
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert entered == [] and limits.in_use(HOST) == 0
    with pytest.raises(LimitWait) as waited:
        async with limits.slot(HOST, 1):
            pytest.fail("started too early")
    assert (waited.value.reason, waited.value.wait_s) == ("pacing", 30.0)  # the reservation was given back


# --- pacing ----------------------------------------------------------------------------------


async def test_pacing_spaces_starts_in_arrival_order() -> None:
    interval = 0.03
    limits = HostLimits(LimitsConfig(per_host_concurrency=10, min_interval_s=interval))
    starts: list[tuple[str, float]] = []

    async def fetch(name: str) -> None:
        async with limits.slot(HOST, 30):
            starts.append((name, time.monotonic()))

    names = [f"r{i}" for i in range(5)]
    await asyncio.gather(*(fetch(name) for name in names))
    assert [name for name, _ in starts] == names
    # Starts are booked interval apart (k-th no earlier than the first + k intervals); a late wake-up
    # of one does not push the bookings after it, so compare against the schedule, not neighbours.
    offsets = [at - starts[0][1] for _, at in starts]
    assert all(offset >= k * interval - 0.002 for k, offset in enumerate(offsets)), offsets


async def test_pacing_refuses_at_once_when_the_start_cannot_fit_and_reserves_nothing() -> None:
    clock = FakeClock()
    limits = HostLimits(LimitsConfig(min_interval_s=10), clock=clock)
    async with limits.slot(HOST, 0):
        pass
    for _ in range(2):  # a refused request reserves nothing: the wait stays 10 s
        with pytest.raises(LimitWait) as waited:
            async with limits.slot(HOST, 5):
                pytest.fail("started too early")
        assert (waited.value.reason, waited.value.wait_s) == ("pacing", 10.0)
    clock.advance(10)
    async with limits.slot(HOST, 0):  # its turn: no wait
        pass


async def test_no_pacing_by_default() -> None:
    clock = FakeClock()
    limits = HostLimits(clock=clock)
    for _ in range(3):
        async with limits.slot(HOST, 0):
            pass
    assert len(limits) == 0


# --- Retry-After -----------------------------------------------------------------------------


async def test_retry_after_longer_than_the_deadline_refuses_at_once() -> None:
    clock = FakeClock()
    limits = HostLimits(clock=clock)
    assert limits.note_retry_after(HOST, 30) == 30
    assert limits.blocked_for(HOST) == 30.0
    with pytest.raises(RetryAfterActive) as refused:
        async with limits.slot(HOST, 10):
            pytest.fail("ignored the Retry-After")
    assert refused.value.retry_after_s == 30.0
    clock.advance(25)
    assert limits.blocked_for(HOST) == 5.0
    with pytest.raises(RetryAfterActive) as refused:
        async with limits.slot(HOST, 4.5):
            pytest.fail("ignored the Retry-After")
    assert refused.value.retry_after_s == 5.0
    clock.advance(5)
    assert limits.blocked_for(HOST) == 0.0
    async with limits.slot(HOST, 0):
        pass
    assert len(limits) == 0


async def test_retry_after_that_fits_is_waited_out() -> None:
    limits = HostLimits()
    limits.note_retry_after(HOST, 0.03)
    assert limits.blocked_for(HOST) > 0
    async with limits.slot(HOST, 30):
        assert limits.blocked_for(HOST) == 0.0
    assert len(limits) == 0


async def test_retry_after_arriving_while_waiting_moves_the_start() -> None:
    limits = HostLimits()
    limits.note_retry_after(HOST, 0.02)
    blocked_at_start: list[float] = []

    async def fetch() -> None:
        async with limits.slot(HOST, 30):
            blocked_at_start.append(limits.blocked_for(HOST))

    task = asyncio.create_task(fetch())
    await until(lambda: limits.in_use(HOST) == 1)  # asleep until the end of the first pause
    limits.note_retry_after(HOST, 0.06)  # another 429, from a request already in flight
    await task
    assert blocked_at_start == [0.0]  # it started only once the longer pause was over


async def test_retry_after_is_capped_and_never_shortened() -> None:
    clock = FakeClock()
    limits = HostLimits(LimitsConfig(max_retry_after_s=3600), clock=clock)
    assert limits.note_retry_after(HOST, 1e9) == 3600
    assert limits.note_retry_after(HOST, math.inf) == 3600
    assert limits.note_retry_after(HOST, 10) == 10
    assert limits.blocked_for(HOST) == 3600.0
    assert limits.note_retry_after("other.example", math.nan) == 0.0
    assert limits.note_retry_after("other.example", -5) == 0.0
    assert limits.blocked_for("other.example") == 0.0 and len(limits) == 1


async def test_retry_after_and_pacing_combine() -> None:
    clock = FakeClock()
    limits = HostLimits(LimitsConfig(min_interval_s=10), clock=clock)
    async with limits.slot(HOST, 0):  # the next start is reserved for +10 s
        pass
    limits.note_retry_after(HOST, 5)
    with pytest.raises(LimitWait) as waited:  # the pause would fit, the pacing does not
        async with limits.slot(HOST, 7):
            pytest.fail("started too early")
    assert (waited.value.reason, waited.value.wait_s) == ("pacing", 10.0)
    limits.note_retry_after(HOST, 15)
    with pytest.raises(RetryAfterActive) as refused:
        async with limits.slot(HOST, 12):
            pytest.fail("started too early")
    assert refused.value.retry_after_s == 15.0


# --- memory ----------------------------------------------------------------------------------


async def test_idle_hosts_are_swept() -> None:
    clock = FakeClock()
    limits = HostLimits(clock=clock)
    for i in range(1024):
        limits.note_retry_after(f"h{i}.example", 1)
    assert len(limits) == 1024
    clock.advance(2)
    limits.note_retry_after("new.example", 1)
    assert len(limits) == 1


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        LimitsConfig(per_host_concurrency=0)
    with pytest.raises(ValueError):
        LimitsConfig(min_interval_s=-1)


class _HangingShared:
    """Shared limits whose giving back never finishes (a Redis that stopped answering)."""

    def __init__(self) -> None:
        self.left: list[str] = []
        self.answer = asyncio.Event()

    async def enter(self, host: str, limit: int, interval_s: float, deadline_s: float) -> SharedEntry:
        return SharedEntry(token="t1", wait_s=0.0)

    async def leave(self, host: str, token: str) -> None:
        self.left.append(token)
        await self.answer.wait()

    async def note_retry_after(self, host: str, seconds: float) -> None:
        pass


async def test_giving_back_a_shared_slot_never_holds_a_request_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits_module, "LEAVE_WAIT_S", 60.0)  # only the deadline can bound the wait
    clock = FakeClock()
    shared = _HangingShared()
    limits = HostLimits(LimitsConfig(per_host_concurrency=1), clock=clock, shared=shared)
    async with asyncio.timeout(5):
        async with limits.slot(HOST, 2.0):
            clock.advance(3.0)  # the request used up its time
    assert limits.in_use(HOST) == 0  # the local slot is free at once
    await until(lambda: shared.left == ["t1"])  # and the shared one is being given back meanwhile
    shared.answer.set()
