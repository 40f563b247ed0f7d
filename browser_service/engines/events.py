"""A page's network and navigation events, subscribed to once for the page's whole life.

Playwright's driver sends a page's request events only while the client listens to them: the
first listener of ``request``, ``response``, ``requestfinished`` or ``requestfailed`` sends an
``updateSubscription`` to the driver, and removing the last one sends another. A render that added
and removed its own listeners on a pool slot's long-lived page paid eight driver round trips per
lease for that alone — as many as all its other calls together, and on a 2-core machine at
concurrency 8 the service's own CPU is what bounds its throughput. :class:`PageEvents` listens
once per page and hands each event to the listeners of the lease that holds the page now.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Literal

from playwright.async_api import Page

Event = Literal["request", "response", "requestfailed", "requestfinished", "framenavigated"]
EVENTS: tuple[Event, ...] = ("request", "response", "requestfailed", "requestfinished", "framenavigated")

Listener = Callable[[Any], None]


class PageEvents:
    """One permanent Playwright listener per event; :meth:`on` / :meth:`off` are local only."""

    def __init__(self, page: Page) -> None:
        self._listeners: dict[str, list[Listener]] = {name: [] for name in EVENTS}
        for name in EVENTS:
            page.on(name, self._dispatcher(name))

    def _dispatcher(self, name: Event) -> Listener:
        listeners = self._listeners[name]

        def dispatch(arg: Any) -> None:
            for listener in tuple(listeners):  # a listener may remove itself
                listener(arg)

        return dispatch

    def on(self, name: Event, listener: Listener) -> None:
        self._listeners[name].append(listener)

    def off(self, name: Event, listener: Listener) -> None:
        listeners = self._listeners[name]
        if listener in listeners:
            listeners.remove(listener)

    def listening(self) -> int:
        """Listeners attached now (none between leases)."""
        return sum(len(listeners) for listeners in self._listeners.values())


_hubs: weakref.WeakKeyDictionary[Page, PageEvents] = weakref.WeakKeyDictionary()


def page_events(page: Page) -> PageEvents:
    """The page's event hub, made (and subscribed) on first use."""
    hub = _hubs.get(page)
    if hub is None:
        hub = _hubs[page] = PageEvents(page)
    return hub
