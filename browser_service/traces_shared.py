"""Traces of every replica in Redis, so an answer's ``trace_id`` is found through any replica.

Behind a load balancer an agent's ``GET /v1/traces/{id}`` rarely reaches the replica that served
the fetch, whose ring (``traces.TraceRing``) is in its memory only. With ``BROWSER_SERVICE_REDIS_URL``
set, each replica also writes every trace to one Redis hash, ``browser-service:traces`` (id → the
trace as JSON), and a lookup that misses the local ring reads it there.

Bounded by count, not by time, so Redis's memory does not grow with the request rate: one Lua
script adds a trace and drops the oldest beyond ``size`` in the same atomic step (an order set,
``…:traces:order``, scored by a counter, ``…:traces:seq``). About 2–10 KB per trace: the default
10,000 take some 20–100 MB.

When Redis does not answer, a write is dropped (the local ring still has the trace) and a lookup
finds only what the local ring has; neither ever fails the fetch or the request.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from browser_service.shared import RedisLink, SharedUnavailable
from browser_service.traces import Trace

log = logging.getLogger(__name__)

#: KEYS: hash, order set, counter. ARGV: id, trace JSON, size.
_PUT = """
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(oldest))
end
return over
"""


class RedisTraces:
    """The last ``size`` traces of all replicas together, by id."""

    def __init__(self, link: RedisLink, size: int) -> None:
        self.size = size
        self._link = link
        self._put = link.client.register_script(_PUT)
        self._keys = [link.key("traces"), link.key("traces", "order"), link.key("traces", "seq")]

    async def put(self, trace: Trace) -> None:
        """Keep ``trace``; never raises (a trace that could not be shared is still in the local ring)."""
        if self.size <= 0:
            return
        args: list[Any] = [trace.trace_id, trace.model_dump_json(), self.size]
        try:
            await self._link.call(lambda _client: self._put(keys=self._keys, args=args))
        except SharedUnavailable:
            pass  # the link logged it and reports it in /v1/health
        except Exception:
            log.exception("sharing a trace failed", extra={"trace_id": trace.trace_id})

    async def get(self, trace_id: str) -> Trace | None:
        """The trace, if Redis has it; raises :class:`SharedUnavailable` when Redis does not answer."""
        raw: Any = await self._link.call(lambda client: client.hget(self._keys[0], trace_id))
        if raw is None:
            return None
        try:
            return Trace.model_validate_json(raw)
        except ValidationError:  # written by a replica of another version, whose trace differs
            log.warning("a shared trace does not match this version's schema", extra={"trace_id": trace_id})
            return None
