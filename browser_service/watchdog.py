"""Heartbeats for every browser slot, and a watchdog that acts when one stops.

A crashed browser announces itself (Playwright's ``disconnected``), but a *wedged* one does not: a
page spinning in JavaScript, a renderer that stopped answering, a browser process that hangs. A
request on it would wait out its whole deadline, and the next one too. So every
``BROWSER_SERVICE_HEARTBEAT_INTERVAL_S`` the watchdog checks each slot of the pool (``pool.py``):

* an **idle** slot (a clean page waiting for a lease) is taken out of reach of leases and must
  answer a script (``1``, over the page's CDP session) within
  ``BROWSER_SERVICE_HEARTBEAT_TIMEOUT_MS``; one that does not is closed and replaced by a fresh page;
* a **leased** slot's heartbeat is its request's deadline: a lease still held
  ``BROWSER_SERVICE_LEASE_GRACE_S`` after it (every await of a fetch is bounded by the deadline, so
  this means something ignored it) has its context closed, which fails the holder's browser calls
  (typed ``browser_error``, retried) and frees the slot;
* a slot whose context will not even close means its **browser is wedged**: it is killed, and
  relaunched at once — as is a browser that went down between requests — so the next request does
  not pay for the launch.

The counts are exported by ``/metrics`` (``browser_service_heartbeats_total``,
``browser_service_watchdog_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

from browser_service.engines.page_script import call
from browser_service.isolation import PageSlot
from browser_service.pool import BrowserPool

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, pool: BrowserPool, *, interval_s: float, timeout_s: float, lease_grace_s: float) -> None:
        self.pool = pool
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.lease_grace_s = lease_grace_s
        self.heartbeats = {"ok": 0, "failed": 0}
        self.recycled = {"heartbeat": 0, "lease_overdue": 0}
        self.wedged_browsers = 0
        self.relaunches = 0
        self.last_check: float | None = None  # Unix time of the last finished check
        self._task: asyncio.Task[None] | None = None
        self._overdue: weakref.WeakSet[PageSlot] = weakref.WeakSet()  # leased slots already acted on

    def start(self) -> None:
        """Check every ``interval_s`` in the background (not at all when it is 0)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="browser-service-watchdog")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the watchdog must outlive whatever it finds
                log.exception("watchdog check failed")

    async def check(self) -> None:
        """One round: every idle slot's heartbeat, every lease's age; then a browser if one is missing."""
        if self.pool.closing:
            return
        await asyncio.gather(self._check_leases(), *(self._heartbeat(slot) for slot in self.pool.idle()))
        if not self.pool.closing:
            with contextlib.suppress(Exception):  # a launch that fails now is retried by the next lease
                if await self.pool.relaunch():
                    self.relaunches += 1
                    log.warning("watchdog relaunched the browser")
                    await self.pool.replenish()
        self.last_check = time.time()

    async def _heartbeat(self, slot: PageSlot) -> None:
        if not self.pool.claim_idle(slot):
            return  # leased meanwhile: its lease is watched instead
        try:
            # Over the slot's CDP session, as the engine reads pages: page.evaluate would first inject
            # Playwright's helper script into each blank page it checks.
            alive = await asyncio.wait_for(call(slot.cdp, "() => 1"), self.timeout_s) == 1
        except Exception:  # a timeout (a wedged page) or a closed page / crashed browser
            alive = False
        if alive:
            self.heartbeats["ok"] += 1
            await self.pool.unclaim(slot)
            return
        self.heartbeats["failed"] += 1
        log.warning(
            "slot heartbeat failed; replacing the slot",
            extra={"generation": slot.generation, "timeout_s": self.timeout_s},
        )
        await self._recycle(slot)
        self.recycled["heartbeat"] += 1
        await self.pool.replenish()

    async def _check_leases(self) -> None:
        now = time.monotonic()
        for slot, expires in self.pool.leases():
            if now - expires <= self.lease_grace_s or slot in self._overdue:
                continue
            self._overdue.add(slot)
            log.warning(
                "lease held past its deadline; closing its slot",
                extra={"generation": slot.generation, "overdue_s": round(now - expires, 1)},
            )
            await self._recycle(slot)
            self.recycled["lease_overdue"] += 1

    async def _recycle(self, slot: PageSlot) -> None:
        if not await self.pool.recycle_slot(slot):
            self.wedged_browsers += 1
