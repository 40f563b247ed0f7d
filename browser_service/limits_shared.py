"""A host's concurrency, pacing and Retry-After in Redis, so replicas are polite as one client.

Per host, two keys (times in milliseconds on Redis's clock, which every replica agrees on):

* ``browser-service:host-times:<host>``, a hash with ``retry_until`` and ``next_start``;
* ``browser-service:host-slots:<host>``, a sorted set of the fetches holding one of the host's
  slots: a random token scored by the end of its lease (the request's deadline plus
  :data:`LEASE_GRACE_S`), so a slot held by a replica that died frees itself when its lease runs out.

Two Lua scripts, each one atomic step on Redis:

* ``enter`` — refuse at once without taking anything if the host's Retry-After, or the pacing
  reservations already made, outlast the request's deadline (:class:`~browser_service.limits.RetryAfterActive`,
  or :class:`~browser_service.limits.LimitWait` ``"pacing"``); else, if fewer than the limit hold a
  slot, take one and book the start (after the Retry-After and, with pacing, the previous booked start
  plus the interval) and return the wait; else say "full". A full host is asked again 10–100 ms
  apart (doubling) until a slot frees or the deadline runs out (``LimitWait("concurrency")``).
  Across replicas that is not first-come first-served; within one, the local queue before it is.
* ``note`` — a Retry-After from the host: ``retry_until`` only ever moves later.

Leaving a slot removes its token. The keys expire a second after the last time they hold.

When Redis does not answer, ``enter`` grants at once without a token (the per-process limits,
already applied, stand alone), leaving is skipped, and ``note`` is dropped (the replica that saw it
still honours it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from functools import partial
from typing import Any

from browser_service.limits import LimitWait, RetryAfterActive, SharedEntry
from browser_service.shared import RedisLink, SharedUnavailable

#: A slot's lease outlives its request's deadline by this much before another replica may take it
#: (a request overshoots its deadline by well under a second; this covers a slow answer too).
LEASE_GRACE_S = 10.0
#: The first and the longest pause between two asks for a full host's slot.
POLL_FIRST_S = 0.01
POLL_MAX_S = 0.1

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retry = tonumber(redis.call('HGET', KEYS[1], 'retry_until') or '0')
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next_start') or '0')
"""

#: KEYS: times hash, slots set. ARGV: interval ms, deadline ms, limit, token, lease ms.
#: Returns {0, wait ms} | {1, Retry-After ms left} | {2, pacing wait ms} | {3, 0} (every slot held).
_ENTER = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local deadline = tonumber(ARGV[2])
if retry - now > 0 and retry - now > deadline then return {1, retry - now} end
local start = now
if retry > start then start = retry end
if interval > 0 and nxt > start then start = nxt end
if start - now > deadline then return {2, start - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {3, 0} end
local lease_end = now + tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], lease_end, ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], tonumber(last[2]) - now + 1000)
if interval > 0 then
  redis.call('HSET', KEYS[1], 'next_start', start + interval)
  redis.call('PEXPIRE', KEYS[1], math.max(start + interval, retry) - now + 1000)
end
return {0, start - now}
"""
)

#: KEYS: times hash. ARGV: Retry-After ms.
_NOTE = (
    _NOW
    + """
local till = now + tonumber(ARGV[1])
if till > retry then
  redis.call('HSET', KEYS[1], 'retry_until', till)
  retry = till
end
redis.call('PEXPIRE', KEYS[1], math.max(retry, nxt) - now + 1000)
return retry - now
"""
)


class RedisHostLimits:
    """:class:`~browser_service.limits.SharedHostLimits` on Redis."""

    def __init__(self, link: RedisLink, *, lease_grace_s: float = LEASE_GRACE_S) -> None:
        self._link = link
        self.lease_grace_s = lease_grace_s
        self._enter = link.client.register_script(_ENTER)
        self._note = link.client.register_script(_NOTE)

    def _keys(self, host: str) -> list[str]:
        return [self._link.key("host-times", host), self._link.key("host-slots", host)]

    async def enter(self, host: str, limit: int, interval_s: float, deadline_s: float) -> SharedEntry:
        token = secrets.token_hex(8)
        keys = self._keys(host)
        end = time.monotonic() + deadline_s
        asked_at = time.monotonic()
        pause = POLL_FIRST_S
        while True:
            remaining = end - time.monotonic()
            args: list[int | str] = [
                math.ceil(interval_s * 1000),
                max(0, math.floor(remaining * 1000)),
                limit,
                token,
                math.ceil((max(0.0, remaining) + self.lease_grace_s) * 1000),
            ]
            try:
                answer: Any = await self._link.call(partial(self._ask, keys, args))
            except SharedUnavailable:
                return SharedEntry(token=None, wait_s=0.0)
            code, ms = int(answer[0]), int(answer[1])
            if code == 0:
                return SharedEntry(token=token, wait_s=ms / 1000)
            if code == 1:
                raise RetryAfterActive(ms / 1000)
            if code == 2:
                raise LimitWait(ms / 1000, "pacing")
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise LimitWait(round(time.monotonic() - asked_at, 3), "concurrency")
            await asyncio.sleep(min(pause, remaining))
            pause = min(POLL_MAX_S, pause * 2)

    async def _ask(self, keys: list[str], args: list[int | str], _client: Any) -> Any:
        return await self._enter(keys=keys, args=args)

    async def leave(self, host: str, token: str) -> None:
        key = self._keys(host)[1]
        with contextlib.suppress(SharedUnavailable):  # else the slot frees itself when its lease runs out
            await self._link.call(lambda client: client.zrem(key, token))

    async def note_retry_after(self, host: str, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            return
        keys = self._keys(host)[:1]
        with contextlib.suppress(SharedUnavailable):
            await self._link.call(lambda _client: self._note(keys=keys, args=[math.ceil(seconds * 1000)]))
