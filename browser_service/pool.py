"""BrowserPool: one long-lived Chromium, a fixed number of isolated page slots, and its health.

Design (the measurements behind it are in docs/architecture.md, from bench/pool_isolation.py):

* **Isolation** (``isolation.py``): by default a slot keeps its context and page and cleans them
  after each lease — cookies, all storage of every origin visited, HTTP cache, popups, headers —
  which measured ~3× faster than a fresh context per lease; ``BROWSER_SERVICE_ISOLATION=context``
  opens a fresh context per lease instead. Cleaning runs after the lease is released to the
  caller; the slot is free again when it is clean.
* **Slots and queue**: ``pool_size`` leases at once; up to ``queue_size`` requests wait in FIFO
  order, each no longer than its own deadline (``timeout`` in phase ``queue``); past that the pool
  answers ``overloaded`` at once with a ``retry_after_s`` estimated from recent lease times.
* **Release always**: a lease is released by ``async with``, so cancellation (a client that went
  away) and errors free the slot; cleaning and closing are bounded, a slot that cannot be cleaned is
  closed, and a context that will not close marks its browser as wedged (it is recycled).
* **Network policy** (``egress.py``): Chromium runs behind the pool's :class:`Egress`, a SOCKS5
  proxy on loopback that resolves every name through the policy and connects only to checked
  addresses; with ``browser_route_checks`` every slot's context also routes each request through a
  :class:`PageGuard` first.
* **Browser lifecycle**: the browser is launched lazily (or at start-up), recycled after
  ``recycle_after`` pages (new leases go to a fresh browser; the old one closes when its last lease
  ends), and relaunched when it crashes or disconnects. Leases on a dead browser fail with a typed
  ``browser_error`` that the fetcher retries on the new browser while the deadline allows.
* **Remote browsers** (``BROWSER_SERVICE_BROWSER_ENDPOINT``): the pool connects to a browser it did
  not launch — a Playwright browser server (``ws://``) or a CDP endpoint (``http://host:port``,
  ``ws://…/devtools/browser/…``) — instead of launching one. Leases, waits, health and reconnecting
  after a dropped connection are the same; what differs: the egress proxy is set per context (the
  browser was not started behind it), closing and recycling disconnect (after ``recycle_after``
  pages the pool reconnects, dropping every context it opened) and a remote browser is never killed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from browser_service.chromium import IGNORED_DEFAULT_ARGS, BrowserNotFound, bundled_path, find_chromium, launch_args
from browser_service.contract import PoolHealth, PoolState
from browser_service.deadline import Deadline
from browser_service.egress import Egress, PageGuard
from browser_service.errors import BrowserError, FetchTimeout, Overloaded
from browser_service.guard import NetworkPolicy
from browser_service.isolation import REPLACE_AFTER, ContextTape, PageSlot, close_slot, open_slot, reset_slot
from browser_service.settings import Settings

log = logging.getLogger(__name__)

#: Upper bound for closing a context: a healthy browser does it in milliseconds.
CLOSE_TIMEOUT_S = 5.0


@dataclass(eq=False)
class _Browser:
    """One launched browser and its bookkeeping."""

    browser: Browser
    generation: int
    marker: str
    active: int = 0
    served: int = 0
    retiring: bool = False
    closed: bool = False
    pid: int | None = None
    wedged: bool = False  # killed by the watchdog for not answering


#: Chromium flags that make the egress proxy its only way out: no DNS of its own (names go to the
#: proxy), no QUIC, no WebRTC UDP outside the proxy.
EGRESS_ARGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-quic",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)


@dataclass
class Lease:
    context: BrowserContext
    page: Page
    generation: int
    guard: PageGuard
    egress: Egress
    slot: PageSlot = field(repr=False)

    @property
    def cdp(self) -> CDPSession:
        """The page's CDP session, which the engine reads the page through (engines/page_script.py)."""
        return self.slot.cdp

    async def set_extra_headers(self, headers: Mapping[str, str]) -> None:
        """Headers sent with every request of this lease's page; the slot's cleaning takes them off."""
        self.slot.extra_headers = True
        await self.page.set_extra_http_headers(dict(headers))

    def browser_alive(self) -> bool:
        browser = self.context.browser
        return browser is not None and browser.is_connected()


@dataclass
class _Waiter:
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SlotQueue:
    """A FIFO counting semaphore with a bounded wait list that hands a freed slot to the next waiter.

    Written out rather than ``asyncio.Semaphore`` + ``wait_for`` because the slot must never be
    lost when a waiter is cancelled or times out at the moment it is handed a slot.
    """

    def __init__(self, size: int, queue_limit: int) -> None:
        self.size = size
        self.queue_limit = queue_limit
        self.in_use = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        if self.in_use < self.size and not self._waiters:
            self.in_use += 1
            return True
        return False

    def full(self) -> bool:
        return len(self._waiters) >= self.queue_limit

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # we were handed a slot while being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(None)  # the slot moves to the waiter; in_use unchanged
                return
        self.in_use -= 1


class BrowserPool:
    def __init__(self, settings: Settings, *, user_agent: str, init_script: str | None = None) -> None:
        self._settings = settings
        self._user_agent = user_agent
        self._init_script = init_script
        self.policy = NetworkPolicy(settings.allow)
        self.egress = Egress(self.policy, settings.egress_host, settings.egress_port)
        self.remote = settings.browser_endpoint is not None
        self._slots = SlotQueue(settings.pool_size, settings.queue_size)
        self._playwright: Playwright | None = None
        self._current: _Browser | None = None
        self._launching: asyncio.Task[_Browser] | None = None
        self._generation = 0
        self._closing = False
        self._crashed = False
        self._executable: str | None = None
        self._browsers: set[_Browser] = set()
        self._idle: list[PageSlot] = []  # clean slots ready for a lease (isolation=reset)
        self._checkins: set[asyncio.Task[None]] = set()
        self._leased: dict[PageSlot, Deadline] = {}  # slots leased now, for the watchdog (watchdog.py)
        self._recent_lease_s: collections.deque[float] = collections.deque(maxlen=50)
        self.launches = 0
        self.restarts = 0
        self.recycles = 0
        self.pages_served = 0
        self.last_error: str | None = None
        #: Record/replay (``replay.py``): every lease gets a fresh context under the tape.
        self.tape: ContextTape | None = None

    def use_policy(self, policy: NetworkPolicy) -> None:
        """Hold the browser to ``policy`` (the engines share one, so a test's resolver applies to all)."""
        self.policy = policy
        self.egress.policy = policy

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the browser now rather than on the first lease (``serve`` does, the CLI does not).

        A remote browser that cannot be reached yet does not stop the service from starting: health
        says ``unavailable`` and each lease tries to connect again (a fleet may come up later)."""
        try:
            await self._get_browser(Deadline(self._settings.launch_timeout_ms / 1000))
        except BrowserError as exc:
            if not self.remote:
                raise
            log.warning("remote browser not reachable at start-up", extra={"error": exc.message})

    async def close(self) -> None:
        self._closing = True
        await self.drained()
        self._idle.clear()
        if self._launching is not None:
            self._launching.cancel()
            with contextlib.suppress(BaseException):
                await self._launching
        for handle in list(self._browsers):
            await self._close_browser(handle)
        self._current = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._playwright.stop(), CLOSE_TIMEOUT_S)
            self._playwright = None
        await self.egress.close()

    async def _get_browser(self, deadline: Deadline) -> _Browser:
        current = self._current
        if current is not None and not current.retiring and current.browser.is_connected():
            return current
        if self._launching is None or self._launching.done():
            self._launching = asyncio.create_task(self._launch())
        # Shielded: one waiter's deadline must not cancel a launch that others are waiting for.
        return await deadline.run(asyncio.shield(self._launching), "queue", "launching the browser")

    async def _launch(self) -> _Browser:
        if self._closing:
            raise BrowserError("The service is shutting down.", retryable=True, retry_after_s=5)
        if self._playwright is None:
            self._playwright = await asyncio.wait_for(
                async_playwright().start(), self._settings.launch_timeout_ms / 1000
            )
        if self._settings.browser_endpoint is not None:
            await self.egress.start()
            return self._adopt(await self._connect(self._settings.browser_endpoint), pid=None)
        if self._executable is None:
            try:
                self._executable = find_chromium(self._settings.chromium_path, bundled_path(self._playwright.chromium))
            except BrowserNotFound as exc:
                self.last_error = str(exc)
                raise BrowserError(str(exc), retryable=False) from None
        marker = uuid.uuid4().hex
        proxy = await self.egress.start()
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self._executable,
                headless=self._settings.headless,
                # Loopback is proxied too (Playwright adds "<-loopback>" to the bypass list).
                proxy={"server": proxy},
                args=[*launch_args(self._settings.browser_args), *EGRESS_ARGS, f"--browser-service-pool={marker}"],
                ignore_default_args=list(IGNORED_DEFAULT_ARGS),
                timeout=self._settings.launch_timeout_ms,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except PlaywrightError as exc:
            self.last_error = f"launch failed: {exc.message}"
            raise BrowserError(
                f"The browser could not be started ({exc.message.splitlines()[0]}). Retry shortly.",
                retryable=True,
                retry_after_s=5,
            ) from None
        return self._adopt(browser, pid=_find_pid(marker), marker=marker)

    async def _connect(self, endpoint: str) -> Browser:
        """Connect to the remote browser at ``endpoint`` (a Playwright server or a CDP endpoint)."""
        assert self._playwright is not None
        protocol = endpoint_protocol(endpoint, self._settings.browser_protocol)
        timeout = self._settings.launch_timeout_ms
        try:
            if protocol == "cdp":
                return await self._playwright.chromium.connect_over_cdp(endpoint, timeout=timeout)
            return await self._playwright.chromium.connect(endpoint, timeout=timeout)
        except PlaywrightError as exc:
            where = redact_endpoint(endpoint)
            self.last_error = f"connecting to {where} failed: {exc.message.splitlines()[0]}"
            raise BrowserError(
                f"The remote browser at {where} could not be reached ({protocol}). Retry shortly.",
                retryable=True,
                retry_after_s=5,
            ) from None

    def _adopt(self, browser: Browser, *, pid: int | None, marker: str = "") -> _Browser:
        """Make a launched or connected browser the current one."""
        self._generation += 1
        handle = _Browser(browser, self._generation, marker, pid=pid)
        if self._crashed:
            self.restarts += 1  # replacing a browser that died, not a planned recycle
            self._crashed = False
        self.launches += 1
        self._browsers.add(handle)
        self._current = handle
        browser.on("disconnected", lambda _: self._on_disconnected(handle))
        log.info(
            "browser connected" if self.remote else "browser launched",
            extra={"generation": handle.generation, "pid": handle.pid},
        )
        return handle

    def _on_disconnected(self, handle: _Browser) -> None:
        if not handle.closed:
            self._crashed = True
            self.last_error = f"browser generation {handle.generation} disconnected"
            log.warning("browser disconnected", extra={"generation": handle.generation})
        handle.closed = True
        self._browsers.discard(handle)
        if self._current is handle:
            self._current = None

    async def _close_browser(self, handle: _Browser) -> None:
        handle.closed = True
        self._browsers.discard(handle)
        if self._current is handle:
            self._current = None
        try:
            await asyncio.wait_for(handle.browser.close(), CLOSE_TIMEOUT_S)
        except (TimeoutError, PlaywrightError):
            _kill(handle.pid)

    # --- leases --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self, deadline: Deadline, *, storage_state: dict[str, Any] | None = None) -> AsyncIterator[Lease]:
        """A clean, isolated page for one request; always released, also on error and cancellation.

        With ``storage_state`` (a named session's) the lease gets a fresh context started from that
        state, closed after the lease — never a reused slot, whose cleaning would be wasted and whose
        context holds no state of the session. The route guard and the egress proxy apply the same.
        """
        if self._closing:
            raise BrowserError("The service is shutting down.", retryable=True, retry_after_s=5)
        if not self._slots.try_acquire():
            if self._slots.full():
                raise Overloaded(
                    f"All {self._slots.size} browser slots are busy and {self._slots.queued} requests "
                    "are already waiting. Retry after retry_after_s.",
                    retry_after_s=self._retry_after(),
                )
            await deadline.run(self._slots.acquire(), "queue", "waiting for a browser slot")
        started = time.monotonic()
        handed_off = False
        try:
            handle = await self._get_browser(deadline)
            slot = await self._checkout(handle, deadline, storage_state)
            handle.active += 1
            assert slot.guard is not None
            slot.guard.begin(slot.page)
            self._leased[slot] = deadline
            wedged = False
            try:
                yield Lease(slot.context, slot.page, handle.generation, slot.guard, self.egress, slot)
            except (FetchTimeout, BrowserError, TimeoutError):
                # The page may be stuck (a script spinning, a navigation that never ends). Cleaning
                # it would navigate the stuck renderer to about:blank — and a renderer is reused for
                # the slot's next page of the same site — so the slot gets a fresh context instead.
                # (A lease cancelled because its caller left is cleaned as usual: nothing says stuck.)
                wedged = True
                raise
            finally:
                self._leased.pop(slot, None)
                slot.guard.end()
                handle.served += 1
                self.pages_served += 1
                if handle.served >= self._settings.recycle_after and not handle.retiring:
                    handle.retiring = True  # new leases go to a fresh browser from now on
                    self.recycles += 1
                # Cleaning happens after the answer is on its way; the slot stays taken until it is done.
                task = asyncio.create_task(self._checkin(handle, slot, started, reuse=not wedged))
                self._checkins.add(task)
                task.add_done_callback(self._checkins.discard)
                handed_off = True
        finally:
            if not handed_off:
                self._slots.release()

    async def _checkout(
        self, handle: _Browser, deadline: Deadline, storage_state: dict[str, Any] | None = None
    ) -> PageSlot:
        single_use = storage_state is not None or self.tape is not None
        while self._idle and not single_use:
            slot = self._idle.pop()
            if slot.generation == handle.generation and not handle.closed:
                return slot
            await close_slot(slot)  # from a browser that was recycled or died
        try:
            return await open_slot(
                handle.browser,
                handle.generation,
                deadline,
                user_agent=self._user_agent,
                init_script=self._init_script,
                isolation="context" if single_use else self._settings.isolation,
                guard=PageGuard(self.egress),
                route=self._settings.browser_route_checks,
                storage_state=storage_state,
                proxy=self._context_proxy(),
                tape=self.tape,
            )
        except PlaywrightError as exc:
            raise _browser_error(exc) from None

    async def _checkin(self, handle: _Browser, slot: PageSlot, started: float, *, reuse: bool = True) -> None:
        """Clean the slot for the next lease (or close it), then free the slot."""
        try:
            slot.uses += 1
            reusable = (
                reuse
                and not slot.single_use
                and self._settings.isolation == "reset"
                and slot.uses < REPLACE_AFTER
                and not (handle.closed or handle.retiring or self._closing)
            )
            if reusable:
                try:
                    await reset_slot(slot)
                except Exception as exc:  # a wedged or crashed page: replace it rather than reuse it
                    log.info("slot reset failed; replacing it", extra={"error": repr(exc)})
                    reusable = False
            if reusable:
                self._idle.append(slot)
            elif not handle.closed and not await close_slot(slot):
                log.warning("context did not close; recycling its browser", extra={"generation": handle.generation})
                handle.retiring = True
        finally:
            handle.active -= 1
            self._slots.release()
            self._recent_lease_s.append(time.monotonic() - started)
            await self._maybe_retire(handle)

    async def drained(self) -> None:
        """Wait until every released lease has been cleaned (for tests and shutdown)."""
        while self._checkins:
            await asyncio.gather(*list(self._checkins), return_exceptions=True)

    async def _maybe_retire(self, handle: _Browser) -> None:
        """Close a retiring browser once its last lease has been checked in."""
        if handle.retiring and handle.active == 0 and not handle.closed:
            for slot in [s for s in self._idle if s.generation == handle.generation]:
                self._idle.remove(slot)
            await self._close_browser(handle)

    def _retry_after(self) -> float:
        """Seconds until a slot is likely free: the queue ahead, drained at the recent lease rate."""
        mean = sum(self._recent_lease_s) / len(self._recent_lease_s) if self._recent_lease_s else 1.0
        waves = (self._slots.queued + 1) / self._slots.size
        return round(max(0.5, mean * waves), 1)

    # --- watchdog hooks (watchdog.py) ----------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    def idle(self) -> list[PageSlot]:
        """The clean slots waiting for a lease, now."""
        return list(self._idle)

    def claim_idle(self, slot: PageSlot) -> bool:
        """Take an idle slot out of reach of leases while it is checked; False if a lease took it first."""
        if slot in self._idle:
            self._idle.remove(slot)
            return True
        return False

    async def unclaim(self, slot: PageSlot) -> None:
        """Give a checked slot back — or close it if the pool no longer needs it (a lease opened another)."""
        handle = self._handle(slot.generation)
        spare = len(self._idle) + self._slots.in_use < self._slots.size
        if handle is not None and handle is self._current and not handle.retiring and not self._closing and spare:
            self._idle.append(slot)
        elif handle is not None and not handle.closed:
            await close_slot(slot)

    def leases(self) -> list[tuple[PageSlot, float]]:
        """Slots leased now, with the monotonic time their request's deadline expires."""
        return [(slot, deadline.expires) for slot, deadline in self._leased.items()]

    async def recycle_slot(self, slot: PageSlot) -> bool:
        """Close ``slot`` (a leased one's holder then fails its next browser call and is retried).

        A context that will not close means its browser is wedged: it is killed (its leases fail with
        ``browser_error`` and are retried) and the next lease, or the watchdog, launches a new one.
        False when that happened.
        """
        handle = self._handle(slot.generation)
        if handle is None or handle.closed:
            return True
        if await close_slot(slot) or handle.wedged:
            return True  # closed, or its browser already found wedged by another slot's check
        log.warning("browser wedged: a context would not close; killing it", extra={"generation": handle.generation})
        handle.retiring = handle.wedged = True
        self.last_error = f"browser generation {handle.generation} stopped answering"
        _kill(handle.pid)
        return False

    async def replenish(self) -> None:
        """Open a clean slot ahead of the next lease, if the pool has room (after a slot was closed)."""
        handle = self._current
        if self._settings.isolation != "reset" or self._closing or handle is None or handle.retiring:
            return
        if not handle.browser.is_connected() or len(self._idle) + self._slots.in_use >= self._slots.size:
            return
        try:
            slot = await open_slot(
                handle.browser,
                handle.generation,
                Deadline(CLOSE_TIMEOUT_S),
                user_agent=self._user_agent,
                init_script=self._init_script,
                isolation=self._settings.isolation,
                guard=PageGuard(self.egress),
                route=self._settings.browser_route_checks,
                proxy=self._context_proxy(),
            )
        except Exception as exc:  # the next lease opens one instead
            log.info("could not open a spare slot", extra={"error": repr(exc)})
            return
        if handle is self._current and not handle.retiring and len(self._idle) + self._slots.in_use < self._slots.size:
            self._idle.append(slot)
        else:
            await close_slot(slot)

    async def relaunch(self) -> bool:
        """Launch a browser now if the one that ran went down (crash, kill); True if one was launched."""
        current = self._current
        running = current is not None and not current.retiring and current.browser.is_connected()
        launching = self._launching is not None and not self._launching.done()
        if self._closing or self.launches == 0 or running or launching:
            return False
        await self.start()
        return True

    def _context_proxy(self) -> str | None:
        """The egress proxy for each context of a remote browser (a launched one has it as a flag)."""
        return self.egress.server if self.remote else None

    def _handle(self, generation: int) -> _Browser | None:
        return next((h for h in self._browsers if h.generation == generation), None)

    # --- health --------------------------------------------------------------------------------

    def health(self) -> PoolHealth:
        current = self._current
        connected = current is not None and current.browser.is_connected()
        state: PoolState
        relaunching = self._launching is not None and not self._launching.done()
        if self._closing or (self.launches == 0 and self.last_error and not relaunching):
            state = "unavailable"  # shutting down, or the browser never came up
        elif relaunching or self._slots.queued > 0 or (self.launches > 0 and not connected):
            state = "degraded"  # (re)launching, saturated, or down until the next lease relaunches it
        else:
            state = "available"
        return PoolHealth(
            state=state,
            size=self._slots.size,
            in_use=self._slots.in_use,
            queued=self._slots.queued,
            queue_limit=self._slots.queue_limit,
            browser_connected=connected,
            browser_pid=current.pid if current else None,
            browser_version=current.browser.version if connected and current else None,
            launches=self.launches,
            restarts=self.restarts,
            recycles=self.recycles,
            pages_served=self.pages_served,
        )

    def open_contexts(self) -> int:
        """Contexts open across browsers: when idle, at most one per clean slot — nothing leaked."""
        return sum(len(h.browser.contexts) for h in self._browsers if h.browser.is_connected())

    def open_pages(self) -> int:
        return sum(len(c.pages) for h in self._browsers if h.browser.is_connected() for c in h.browser.contexts)

    @property
    def idle_slots(self) -> int:
        return len(self._idle)


def endpoint_protocol(endpoint: str, protocol: str = "auto") -> Literal["playwright", "cdp"]:
    """How to speak to a remote browser: as configured, else CDP for ``http(s)://`` and DevTools
    paths (``ws://…/devtools/browser/…``, what Chrome and Browserless serve), else a Playwright server."""
    if protocol in ("playwright", "cdp"):
        return "cdp" if protocol == "cdp" else "playwright"
    parts = urlsplit(endpoint)
    if parts.scheme in ("http", "https") or parts.path.startswith("/devtools/"):
        return "cdp"
    return "playwright"


def redact_endpoint(endpoint: str) -> str:
    """The endpoint without credentials, path or query (Browserless puts its token there), for messages."""
    parts = urlsplit(endpoint)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def _browser_error(exc: PlaywrightError) -> BrowserError:
    first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return BrowserError(
        f"The browser failed ({first}). It is being restarted; retry the request.",
        retryable=True,
        retry_after_s=1,
    )


def _find_pid(marker: str) -> int | None:
    """The browser's main process: the one whose command line carries our marker and no --type."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(marker.encode() in arg for arg in cmdline) and not any(arg.startswith(b"--type=") for arg in cmdline):
            return int(entry.name)
    return None


def _kill(pid: int | None) -> None:
    if pid is None:
        return
    import os
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
