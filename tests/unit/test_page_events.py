"""The per-page event hub: one Playwright subscription per event for the page's life, local
listeners per lease."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from playwright.async_api import Page

from browser_service.engines.events import EVENTS, PageEvents, page_events


class FakePage:
    """Records what is subscribed on it, as Playwright's page would (pure logic: no browser)."""

    def __init__(self) -> None:
        self.subscribed: dict[str, list[Callable[[Any], None]]] = {}

    def on(self, name: str, listener: Callable[[Any], None]) -> None:
        self.subscribed.setdefault(name, []).append(listener)

    def emit(self, name: str, arg: object) -> None:
        for listener in self.subscribed.get(name, []):
            listener(arg)


def test_each_event_is_subscribed_once_and_handed_to_the_current_listeners() -> None:
    fake = FakePage()
    page = cast(Page, fake)
    hub = page_events(page)
    assert page_events(page) is hub  # made once per page
    assert {name: len(listeners) for name, listeners in fake.subscribed.items()} == dict.fromkeys(EVENTS, 1)

    seen: list[tuple[str, object]] = []
    first = lambda arg: seen.append(("first", arg))  # noqa: E731
    second = lambda arg: seen.append(("second", arg))  # noqa: E731
    hub.on("request", first)
    hub.on("request", second)
    fake.emit("request", 1)
    fake.emit("response", 2)  # nobody listens to it: dropped
    hub.off("request", first)
    fake.emit("request", 3)
    hub.off("request", second)
    hub.off("request", second)  # twice: harmless
    fake.emit("request", 4)
    assert seen == [("first", 1), ("second", 1), ("second", 3)]
    assert hub.listening() == 0
    assert {name: len(listeners) for name, listeners in fake.subscribed.items()} == dict.fromkeys(EVENTS, 1)


def test_a_listener_may_remove_itself_while_the_event_is_handed_out() -> None:
    fake = FakePage()
    hub = PageEvents(cast(Page, fake))
    seen: list[str] = []

    def once(arg: object) -> None:
        seen.append(f"once {arg}")
        hub.off("framenavigated", once)

    hub.on("framenavigated", once)
    hub.on("framenavigated", lambda arg: seen.append(f"always {arg}"))
    fake.emit("framenavigated", "a")
    fake.emit("framenavigated", "b")
    assert seen == ["once a", "always a", "always b"]
