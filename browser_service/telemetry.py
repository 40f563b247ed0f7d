"""What each fetch leaves behind: a trace in the ring, one log event, the request metrics.

``Fetcher.fetch`` is wrapped by :func:`observed`, so every entry point (REST, MCP, CLI, batch)
is observed the same way and the pipeline's code stays about the pipeline. The wrapper times the
fetch (``timings.py`` collects its per-phase spans from ``Deadline.run``), and when the answer is
ready builds its :class:`~browser_service.traces.Trace`, keeps it (``traces.py``), logs the
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

log = logging.getLogger(__name__)
P = ParamSpec("P")


class Telemetry:
    def __init__(self, settings: Settings) -> None:
        self.traces = traces.TraceRing(settings.trace_buffer)
        self.metrics = FetchMetrics()

    def finished(self, request: FetchRequest, response: FetchResponse, spans: Timings, started_at: datetime) -> None:
        trace = traces.build(request, response, spans, started_at, spans.elapsed_s())
        self.traces.add(trace)
        self.metrics.observe(trace)
        logs.fetch_event(trace)

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
            _safely(lambda: telemetry.finished(request, response, spans, started_at))
        return response

    return wrapper


def _safely(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:
        log.exception("telemetry failed (the answer is not affected)")
