"""Traces of every replica in Redis, so an answer's ``trace_id`` is found through any replica.

Behind a load balancer an agent's ``GET /v1/traces/{id}`` rarely reaches the replica that served
the fetch, whose ring (``traces.TraceRing``) is in its memory only. With ``BROWSER_SERVICE_REDIS_URL``
set, each replica also writes every trace to one Redis hash, ``browser-service:traces`` (id → the
trace as JSON), and a lookup that misses the local ring reads it there.

Bounded by count, not by time, so Redis's memory does not grow with the request rate
(``shared.BoundedHash``: one Lua script adds a trace and drops the oldest beyond ``size``). About
2–10 KB per trace: the default 10,000 take some 20–100 MB.

When Redis does not answer, a write is dropped (the local ring still has the trace) and a lookup
finds only what the local ring has; neither ever fails the fetch or the request.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from browser_service.shared import BoundedHash, RedisLink, SharedUnavailable
from browser_service.traces import Trace

log = logging.getLogger(__name__)

class RedisTraces:
    """The last ``size`` traces of all replicas together, by id."""

    def __init__(self, link: RedisLink, size: int) -> None:
        self.size = size
        self._hash = BoundedHash(link, "traces", size)

    async def put(self, trace: Trace) -> None:
        """Keep ``trace``; never raises (a trace that could not be shared is still in the local ring)."""
        if self.size <= 0:
            return
        try:
            await self._hash.put(trace.trace_id, trace.model_dump_json())
        except SharedUnavailable:
            pass  # the link logged it and reports it in /v1/health
        except Exception:
            log.exception("sharing a trace failed", extra={"trace_id": trace.trace_id})

    async def get(self, trace_id: str) -> Trace | None:
        """The trace, if Redis has it; raises :class:`SharedUnavailable` when Redis does not answer."""
        raw = await self._hash.get(trace_id)
        if raw is None:
            return None
        try:
            return Trace.model_validate_json(raw)
        except ValidationError:  # written by a replica of another version, whose trace differs
            log.warning("a shared trace does not match this version's schema", extra={"trace_id": trace_id})
            return None
