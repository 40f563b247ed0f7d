"""A host's Retry-After and pacing schedule in Redis, so replicas are polite as one client.

Per host, one hash ``browser-service:host-times:<host>`` with ``retry_until`` and ``next_start``
(milliseconds on Redis's clock). Two Lua scripts, each one atomic step on Redis:

* ``reserve`` — the start a request may have: after the host's Retry-After and, with pacing, after
  the previous booked start plus the interval. Too far for the request's deadline → refused at once
  (:class:`~browser_service.limits.RetryAfterActive`, or :class:`~browser_service.limits.LimitWait`
  ``"pacing"``) without booking; else the start is booked and the wait returned.
* ``note`` — a Retry-After from the host: ``retry_until`` only ever moves later.

The hash expires a second after the last time it holds. When Redis does not answer, ``reserve``
returns 0 (the per-process limits, already applied, stand alone) and ``note`` is dropped (the
replica that saw it still honours it).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from browser_service.limits import LimitWait, RetryAfterActive
from browser_service.shared import RedisLink, SharedUnavailable

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retry = tonumber(redis.call('HGET', KEYS[1], 'retry_until') or '0')
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next_start') or '0')
"""

#: ARGV: interval ms, deadline ms. Returns {0, wait ms} | {1, Retry-After ms left} | {2, pacing wait ms}.
_RESERVE = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local deadline = tonumber(ARGV[2])
if retry - now > 0 and retry - now > deadline then return {1, retry - now} end
local start = now
if retry > start then start = retry end
if interval > 0 and nxt > start then start = nxt end
if start - now > deadline then return {2, start - now} end
if interval > 0 then
  redis.call('HSET', KEYS[1], 'next_start', start + interval)
  redis.call('PEXPIRE', KEYS[1], math.max(start + interval, retry) - now + 1000)
end
return {0, start - now}
"""
)

#: ARGV: Retry-After ms.
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


class RedisHostTimes:
    """:class:`~browser_service.limits.SharedHostTimes` on Redis."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._reserve = link.client.register_script(_RESERVE)
        self._note = link.client.register_script(_NOTE)

    def _key(self, host: str) -> str:
        return self._link.key("host-times", host)

    async def reserve(self, host: str, interval_s: float, deadline_s: float) -> float:
        args = [math.ceil(interval_s * 1000), max(0, math.floor(deadline_s * 1000))]
        try:
            answer: Any = await self._link.call(lambda _client: self._reserve(keys=[self._key(host)], args=args))
        except SharedUnavailable:
            return 0.0
        code, ms = int(answer[0]), int(answer[1])
        if code == 1:
            raise RetryAfterActive(ms / 1000)
        if code == 2:
            raise LimitWait(ms / 1000, "pacing")
        return ms / 1000

    async def note_retry_after(self, host: str, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            return
        with contextlib.suppress(SharedUnavailable):
            await self._link.call(lambda _client: self._note(keys=[self._key(host)], args=[math.ceil(seconds * 1000)]))
