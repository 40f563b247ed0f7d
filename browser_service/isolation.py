"""How a pool slot's page is made clean between leases.

Two strategies, chosen with ``BROWSER_SERVICE_ISOLATION`` (measurements: bench/pool_isolation.py,
summarised in docs/architecture.md):

``reset`` (default)
    A slot keeps its context and page. After each lease, in the background, the page goes to
    ``about:blank`` (unload handlers run, scripts stop), extra pages (popups) are closed, and all
    cookies, every storage kind of every origin the lease's frames visited (localStorage,
    sessionStorage, IndexedDB, CacheStorage, service workers …), the HTTP cache and the extra
    headers are cleared; ``window.name`` is cleared by the blank page itself (``CLEAR_NAME``).
    Every ``REPLACE_AFTER`` leases the slot gets a fresh context anyway, which bounds what the tab
    accumulates (history length, memory). What is left shared between leases of a slot: the tab's
    history count (up to ``REPLACE_AFTER``) and kept-alive connections, through which an origin
    could link two requests — as it can for the HTTP engine's shared connection pool. About 2.5×
    the throughput of a fresh context per lease.
``context``
    A fresh browser context per lease, closed after it: nothing at all is shared, but opening one
    and its page costs ~150 ms of CPU (a new profile, storage partition and renderer), which holds
    a 2-core machine near 7.6 pages/s on small pages whatever the pool size.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, CDPSession, Frame, Page

from browser_service.deadline import Deadline
from browser_service.egress import PageGuard

Isolation = Literal["reset", "context"]

#: A reset slot gets a fresh context after this many leases.
REPLACE_AFTER = 50
#: Upper bound for cleaning a page; a page that cannot be cleaned in time is closed instead.
RESET_TIMEOUT_S = 5.0

#: ``window.name`` belongs to the tab, not the document: Chromium keeps it across the navigation to
#: ``about:blank`` that ends a lease. The blank document clears it as it is created, after the
#: lease's document is gone (its unload handlers, which may set it, ran as that navigation
#: committed). Done here rather than by ``page.evaluate`` after the commit, which cost ~11 ms of CPU
#: per lease (bench/lease_steps.py): Playwright first injects its helper script into the new document.
CLEAR_NAME = "if (window === window.top && location.href === 'about:blank') window.name = '';"


class ContextTape(Protocol):
    """Puts a context under a recording (``replay.py``): extra context options (Playwright's HAR
    recorder), then routes. A context opened for a tape is single-use, like a session's."""

    def context_options(self) -> dict[str, Any]: ...

    async def prepare(self, context: BrowserContext, guard: PageGuard | None) -> None: ...


@dataclass(eq=False)
class PageSlot:
    """A context and its page, owned by one pool slot at a time."""

    context: BrowserContext
    page: Page
    #: The page's own CDP session: the engine reads pages through it (engines/page_script.py), the
    #: reset clears through it.
    cdp: CDPSession
    generation: int
    guard: PageGuard | None = None
    origins: set[str] = field(default_factory=set)
    uses: int = 0
    #: Whether a lease gave the page extra request headers (``Lease.set_extra_headers``): only then
    #: does the reset spend a driver round trip taking them off.
    extra_headers: bool = False
    #: A session's context (opened with its storage state): closed after its one lease, never reused.
    single_use: bool = False

    def _on_navigated(self, frame: Frame) -> None:
        parts = urlsplit(frame.url)
        if parts.scheme in ("http", "https") and parts.netloc:
            self.origins.add(f"{parts.scheme}://{parts.netloc}")


async def open_slot(
    browser: Browser,
    generation: int,
    deadline: Deadline,
    *,
    user_agent: str,
    init_script: str | None,
    isolation: Isolation,
    guard: PageGuard | None = None,
    route: bool = True,
    storage_state: dict[str, Any] | None = None,
    proxy: str | None = None,
    tape: ContextTape | None = None,
) -> PageSlot:
    """A context and page for a pool slot; with ``guard`` and ``route``, every request of the
    context's pages (popups included) goes through its network-policy check first. With
    ``storage_state`` (a session's cookies and localStorage) the context starts from that state;
    Playwright restores localStorage on a hidden page whose requests it answers itself (nothing
    goes to the network). With ``proxy`` the context's connections go through that proxy — how a
    remote browser, which was not launched behind the egress proxy, is held to the policy."""
    context = await deadline.run(
        browser.new_context(
            user_agent=user_agent,
            accept_downloads=False,
            viewport={"width": 1280, "height": 900},
            locale="en-US",
            service_workers="block",
            storage_state=cast(Any, storage_state),
            proxy={"server": proxy} if proxy else None,
            **(tape.context_options() if tape is not None else {}),
        ),
        "queue",
        "opening a browser context",
    )
    try:
        if init_script:
            await deadline.run(context.add_init_script(init_script), "queue", "preparing a context")
        if isolation == "reset":
            await deadline.run(context.add_init_script(CLEAR_NAME), "queue", "preparing a context")
        if guard is not None and route:
            await deadline.run(context.route("**/*", guard.handle), "queue", "preparing a context")
        if tape is not None:  # after the guard's route: a tape's routes run first
            await deadline.run(tape.prepare(context, guard), "queue", "preparing a context")
        page = await deadline.run(context.new_page(), "queue", "opening a page")
        cdp = await deadline.run(context.new_cdp_session(page), "queue", "opening a page")
    except BaseException:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(context.close(), RESET_TIMEOUT_S)
        raise
    slot = PageSlot(context, page, cdp, generation, guard, single_use=storage_state is not None or tape is not None)
    # A fetch reads its one page; a popup is never wanted. Closed as it opens — also one that a
    # page asked for just before its slot was cleaned, which would otherwise outlive the lease.
    context.on("page", lambda other: None if other is page else _close_soon(other))
    if isolation == "reset":
        page.on("framenavigated", slot._on_navigated)
    return slot


_closing: set[asyncio.Task[None]] = set()


def _close_soon(page: Page) -> None:
    async def close() -> None:
        with contextlib.suppress(Exception):  # gone already, with its context or browser
            await asyncio.wait_for(page.close(), RESET_TIMEOUT_S)

    task = asyncio.ensure_future(close())
    _closing.add(task)  # held until done: a task nobody references may be collected mid-way
    task.add_done_callback(_closing.discard)


async def reset_slot(slot: PageSlot) -> None:
    """Clean the slot for its next lease; raises if it cannot (the caller then closes it)."""
    async with asyncio.timeout(RESET_TIMEOUT_S):
        page = slot.page
        # First: the lease's document must be gone before clearing. It is once the blank one has
        # committed (its unload handlers ran as part of that commit); waiting on for about:blank's
        # `load` as well only held the slot longer (the bench's reference pattern, concurrency 8:
        # ~7 % more pages/s; docs/architecture.md).
        await page.goto("about:blank", wait_until="commit")
        cdp = slot.cdp
        # The rest is independent, and each step is a round trip through Playwright's driver that
        # takes tens of ms on a busy machine: all at once, so the slot is back sooner.
        await asyncio.gather(
            *(extra.close() for extra in slot.context.pages if extra is not page),
            slot.context.clear_cookies(),
            *(
                cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
                for origin in slot.origins
            ),
            cdp.send("Network.clearBrowserCache"),
            *([page.set_extra_http_headers({})] if slot.extra_headers else []),
        )
        slot.origins.clear()
        slot.extra_headers = False


async def close_slot(slot: PageSlot) -> bool:
    """Close the slot's context; False if it would not close in time (its browser is wedged)."""
    try:
        await asyncio.wait_for(slot.context.close(), RESET_TIMEOUT_S)
    except TimeoutError:
        return False
    except Exception:
        pass  # already gone with its browser
    return True
