"""Admission's pure logic: per-caller counting, no limit without keys, draining and the cut at the grace period."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from browser_service.admission import CALLER, SHARED, Admission, caller_id
from browser_service.contract import FetchResponse


def _ok(url: str) -> FetchResponse:
    return FetchResponse(ok=True, url=url, trace_id="t")


def test_caller_id_is_a_digest_never_the_key() -> None:
    assert caller_id("Bearer s3cret", []) == SHARED
    assert caller_id("Bearer s3cret", ["s3cret"]) == "key-" + hashlib.sha256(b"s3cret").hexdigest()[:16]
    assert "s3cret" not in caller_id("Bearer s3cret", ["s3cret"])
    assert caller_id("Bearer a", ["a", "b"]) != caller_id("Bearer b", ["a", "b"])


async def test_without_keys_nothing_is_limited_per_caller() -> None:
    admission = Admission(per_caller=1)
    gate = asyncio.Event()

    async def held() -> FetchResponse:
        await gate.wait()
        return _ok("held")

    CALLER.set(SHARED)
    running = [asyncio.ensure_future(admission.run("u", held)) for _ in range(3)]
    await asyncio.sleep(0)  # let them enter (no awaits before admission)
    assert admission.in_progress == 3
    gate.set()
    assert all(r.ok for r in await asyncio.gather(*running))


async def test_limit_is_per_caller_and_nothing_is_kept_when_idle() -> None:
    admission = Admission(per_caller=2)
    gate = asyncio.Event()

    async def held() -> FetchResponse:
        await gate.wait()
        return _ok("held")

    async def as_caller(caller: str) -> FetchResponse:
        CALLER.set(caller)
        return await admission.run("u", held)

    running = [asyncio.ensure_future(as_caller("key-a")) for _ in range(2)]
    other = asyncio.ensure_future(as_caller("key-b"))
    await asyncio.sleep(0)  # let them enter (no awaits before admission)
    assert admission._counts == {"key-a": 2, "key-b": 1}
    CALLER.set("key-a")
    refused = await admission.run("u", held)
    assert refused.error is not None and refused.error.kind == "overloaded" and refused.error.retry_after_s == 1.0
    gate.set()
    assert all(r.ok for r in await asyncio.gather(*running, other))
    assert admission._counts == {} and admission.in_progress == 0


async def test_drain_refuses_new_work_and_cuts_what_outlasts_the_grace() -> None:
    admission = Admission(per_caller=8, grace_s=0.05)
    finished = asyncio.Event()
    cleaned = asyncio.Event()

    async def quick() -> FetchResponse:
        await finished.wait()
        return _ok("quick")

    async def endless() -> FetchResponse:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()  # the work's own cleanup runs when it is cut
        raise AssertionError("unreachable")

    fast = asyncio.ensure_future(admission.run("fast", quick))
    slow = asyncio.ensure_future(admission.run("slow", endless))
    await asyncio.sleep(0)
    drain = asyncio.ensure_future(admission.drain())
    await asyncio.sleep(0)
    late = await admission.run("late", quick)
    assert late.error is not None and late.error.kind == "overloaded" and "shutting down" in late.error.message
    finished.set()
    assert await drain == 1
    assert (await fast).ok
    cut = await slow
    assert cut.error is not None and cut.url == "slow" and cleaned.is_set()
    assert (cut.error.kind, cut.error.retryable, cut.error.retry_after_s) == ("overloaded", True, 5.0)
    assert "shutdown grace period of 0.05 s (BROWSER_SERVICE_SHUTDOWN_GRACE_S)" in cut.error.message


async def test_other_cancellation_still_propagates() -> None:
    admission = Admission(per_caller=1)

    async def endless() -> FetchResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(admission.run("u", endless))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert admission.in_progress == 0
