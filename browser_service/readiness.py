"""Readiness from a real canary render, not from self-report.

``/readyz`` answers whether this replica can render a page *now*: it leases a slot from the pool
the way a fetch does (so it waits in the same queue, on the same browser), renders a built-in page
with ``page.set_content`` — no network — and reads a random marker back from the DOM. Anything else
(no slot within the timeout, a browser that will not launch or answer, the service draining or
shutting down) is "not ready" with the reason. ``/healthz`` is the cheap liveness check beside it: the process and
its event loop answer, no browser involved.

A load balancer may poll often: one probe's answer is reused for
``BROWSER_SERVICE_READY_CACHE_S`` seconds, and callers that arrive while a probe runs share it, so
polling costs at most one canary lease per period. A probe is bounded by
``BROWSER_SERVICE_READY_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from playwright.async_api import Error as PlaywrightError
from pydantic import BaseModel, Field

from browser_service.deadline import Deadline
from browser_service.errors import FetchError
from browser_service.pool import BrowserPool


class ReadyReport(BaseModel):
    ready: bool
    reason: str | None = Field(None, description="Why not, when not ready.")
    checked_at: datetime = Field(description="When the canary render that this answer comes from ran.")
    age_s: float = Field(description="How old that render is (answers are reused for a few seconds).")
    duration_ms: int = Field(description="How long the canary render took, slot wait included.")


def _canary_page(marker: str) -> str:
    return (
        "<!doctype html><html><head><title>browser-service canary</title></head>"
        f"<body><p id='canary'>{marker}</p><script>document.body.dataset.rendered = '1';</script></body></html>"
    )


#: Read back by the probe: the marker, once the page's script ran.
_READ = "document.body.dataset.rendered === '1' ? document.getElementById('canary').textContent : null"


class ReadinessProbe:
    def __init__(
        self, pool: BrowserPool, *, timeout_s: float, cache_s: float, draining: Callable[[], bool] = lambda: False
    ) -> None:
        self.pool = pool
        self.draining = draining
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self.probes = 0
        self._last: tuple[float, ReadyReport] | None = None  # (monotonic time, report)
        self._running: asyncio.Task[ReadyReport] | None = None

    async def check(self) -> ReadyReport:
        """The last report if it is recent enough, else the result of a new canary render."""
        if self.draining():  # shutting down: out of the load balancer at once, whatever the last render said
            return ReadyReport(
                ready=False,
                reason="draining: the service is shutting down and refuses new requests",
                checked_at=datetime.now(UTC),
                age_s=0.0,
                duration_ms=0,
            )
        last = self._last
        if last is not None and time.monotonic() - last[0] < self.cache_s:
            return last[1].model_copy(update={"age_s": round(time.monotonic() - last[0], 2)})
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._probe())
        # Shielded: one caller going away must not cancel the probe that others are waiting for.
        return await asyncio.shield(self._running)

    async def _probe(self) -> ReadyReport:
        self.probes += 1
        started = time.monotonic()
        checked_at = datetime.now(UTC)
        reason = await self._render()
        report = ReadyReport(
            ready=reason is None,
            reason=reason,
            checked_at=checked_at,
            age_s=0.0,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        self._last = (time.monotonic(), report)
        return report

    async def _render(self) -> str | None:
        """None when the canary rendered and read back; else why not."""
        marker = uuid.uuid4().hex
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self.pool.lease(Deadline(self.timeout_s)) as lease:
                    await lease.page.set_content(_canary_page(marker), timeout=self.timeout_s * 1000)
                    seen = await lease.page.evaluate(_READ)
        except FetchError as exc:  # overloaded, timeout in the queue, browser_error, shutting down
            return f"{exc.kind.value}: {exc.message}"
        except TimeoutError:
            return f"the canary render did not finish within {self.timeout_s:g} s"
        except PlaywrightError as exc:
            first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            return f"the canary render failed: {first}"
        except Exception as exc:  # whatever it is, the answer is "not ready", never a 500
            return f"the canary render failed: {type(exc).__name__}: {exc}"
        if seen != marker:
            return f"the canary page rendered wrong (read {seen!r})"
        return None
