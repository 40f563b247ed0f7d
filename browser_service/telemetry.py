"""What each fetch leaves behind: a trace in the ring, one log event, the request metrics.

``Fetcher.fetch`` is wrapped by :func:`observed`, so every entry point (REST, MCP, CLI, batch)
is observed the same way and the pipeline's code stays about the pipeline. The wrapper times the
fetch (``timings.py`` collects its per-phase spans from ``Deadline.run``), and when the answer is
ready builds its :class:`~browser_service.traces.Trace`, keeps it (``traces.py``; with Redis, also
where every replica finds it: ``traces_shared.py``), logs the
``fetch`` event (``logs.py``) and counts it (``metrics.py``). A fetch cancelled because its client
went away is counted and logged as ``cancelled``. Telemetry never fails a fetch: an error in it is
logged and the answer goes out.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from browser_service import logs, traces
from browser_service.contract import FetchRequest, FetchResponse
from browser_service.guard import host_key
from browser_service.metrics import FetchMetrics
from browser_service.settings import Settings
from browser_service.timings import Timings, timing
from browser_service.traces_shared import RedisTraces

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


#: How long an answer waits for its trace to reach Redis: long enough that the ``trace_id`` it
#: carries is found through any replica (a write takes well under a millisecond), short enough that
#: a Redis in trouble costs an answer little; a slower write finishes in the background.
SHARE_WAIT_S = 0.1
#: The longest shutdown waits for trace writes still running.
CLOSE_WAIT_S = 2.0


class Telemetry:
    def __init__(self, settings: Settings) -> None:
        self.traces = traces.TraceRing(settings.trace_buffer)
        self.metrics = FetchMetrics()
        #: Every replica's traces (Redis), when replicas share state; set by the Fetcher.
        self.shared: RedisTraces | None = None
        self._sharing: set[asyncio.Task[None]] = set()

    def finished(
        self, request: FetchRequest, response: FetchResponse, spans: Timings, started_at: datetime
    ) -> traces.Trace:
        trace = traces.build(request, response, spans, started_at, spans.elapsed_s())
        self.traces.add(trace)
        self.metrics.observe(trace)
        logs.fetch_event(trace)
        return trace

    async def share(self, trace: traces.Trace) -> None:
        """Write the trace to Redis, waiting up to :data:`SHARE_WAIT_S` for it."""
        if self.shared is None:
            return
        task = asyncio.ensure_future(self.shared.put(trace))
        self._sharing.add(task)  # held until done: a task nobody references may be collected mid-way
        task.add_done_callback(self._sharing.discard)
        await asyncio.wait({task}, timeout=SHARE_WAIT_S)  # a timeout leaves it running

    async def find(self, trace_id: str) -> traces.Trace | None:
        """A trace by id: this replica's ring, then (with Redis) every replica's."""
        found = self.traces.get(trace_id)
        if found is None and self.shared is not None:
            found = await self.shared.get(trace_id)  # SharedUnavailable: the caller says so
        return found

    async def aclose(self) -> None:
        """Let the last writes to Redis finish (each is bounded by the Redis link's own timeout)."""
        if self._sharing:
            await asyncio.wait(set(self._sharing), timeout=CLOSE_WAIT_S)

    def cancelled(self, request: FetchRequest, spans: Timings) -> None:
        duration_s = spans.elapsed_s()
        self.metrics.cancelled(None, duration_s)
        logs.fetch_log.info(
            "fetch",
            extra={
                "host": host_key(str(request.url)),
                "url": logs.loggable_url(str(request.url)),
                "render": request.render,
                "ok": False,
                "outcome": "cancelled",
                "duration_ms": round(duration_s * 1000),
                "phases_ms": {phase: round(s * 1000, 1) for phase, s in spans.totals_s.items()},
            },
        )


class Observed(Protocol):
    telemetry: Telemetry


S = TypeVar("S", bound=Observed)


def observed(
    fetch: Callable[Concatenate[S, FetchRequest, P], Awaitable[FetchResponse]],
) -> Callable[Concatenate[S, FetchRequest, P], Awaitable[FetchResponse]]:
    """Decorate ``Fetcher.fetch``: time it, then trace, log and count its answer."""

    @functools.wraps(fetch)
    async def wrapper(self: S, request: FetchRequest, /, *args: P.args, **kwargs: P.kwargs) -> FetchResponse:
        telemetry = self.telemetry
        started_at = datetime.now(UTC)
        with timing() as spans:
            telemetry.metrics.in_flight.inc()
            try:
                response = await fetch(self, request, *args, **kwargs)
            except asyncio.CancelledError:
                _safely(lambda: telemetry.cancelled(request, spans))
                raise
            finally:
                telemetry.metrics.in_flight.dec()
            trace = _safely(lambda: telemetry.finished(request, response, spans, started_at))
            if trace is not None:
                await telemetry.share(trace)
        return response

    return wrapper


def _safely(action: Callable[[], R]) -> R | None:
    try:
        return action()
    except Exception:
        log.exception("telemetry failed (the answer is not affected)")
        return None
