"""Page actions: the steps a request asks the browser to take before the page is read.

Some content appears only after a click ("show more"), a search typed into a form, or scrolling an
infinite list. ``FetchRequest.actions`` lists such steps; the browser engine runs them here, in
order, after navigation and the default settle wait and before the page is read (the request's
``wait_for`` / ``wait_ms`` then apply to the page the steps left).

Every step is bounded twice: by its own ``timeout_ms`` (how long it may wait for its element) and
by the request's deadline (``Deadline.run``). A step that cannot be done is ``action_failed``,
naming the step (index, type, selector) and why: no element matches, the element is not visible,
it never became usable (covered, disabled, moving), or the wait ran out. When the *request's*
deadline is what ran out, the answer is ``timeout`` in phase ``action``, naming the step too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_service.contract import (
    Action,
    ClickAction,
    PressAction,
    ScrollAction,
    ScrollUntilStableAction,
    TypeAction,
    WaitForAction,
    WaitMsAction,
)
from browser_service.deadline import Deadline
from browser_service.errors import ActionFailed, FetchTimeout

#: Time kept back from a step's wait so that reading the page still fits in the deadline.
READ_RESERVE_S = 0.5

_HEIGHT = "() => Math.max(document.body ? document.body.scrollHeight : 0, document.documentElement.scrollHeight)"
_GREW = "(h) => Math.max(document.body ? document.body.scrollHeight : 0, document.documentElement.scrollHeight) > h"


async def run_actions(page: Page, actions: Sequence[Action], deadline: Deadline) -> list[str]:
    """Run ``actions`` on ``page``; the warnings to add to the answer (none when all went as asked)."""
    warnings: list[str] = []
    for index, action in enumerate(actions):
        step = _Step(index, len(actions), action, deadline)
        try:
            try:
                note = await step.run(page)
            except PlaywrightError as exc:
                if "context was destroyed" not in (exc.message or ""):
                    raise
                # The previous step navigated (a link, a submitted form): once the new page has
                # loaded, the step runs on it.
                await deadline.run(page.wait_for_load_state("load", timeout=0), "action", step.name)
                note = await step.run(page)
        except PlaywrightTimeout:
            raise await step.diagnose(page) from None
        except FetchTimeout:
            raise step.out_of_time() from None
        except PlaywrightError as exc:
            if _closed(exc):
                raise  # the page or browser is gone: the engine's own error handling says so
            raise step.failed(f"the browser refused it ({_first_line(exc)})") from None
        if note:
            warnings.append(f"{step.name}: {note}")
    return warnings


class _Step:
    def __init__(self, index: int, total: int, action: Action, deadline: Deadline) -> None:
        self.index = index
        self.action = action
        self.deadline = deadline
        target = getattr(action, "selector", None)
        self.selector: str | None = target
        on = f" {target!r}" if target else ""
        self.name = f"step {index + 1} of {total} (actions[{index}]: {action.type}{on})"
        self.waited_ms = 0
        self.cut_by_deadline = False

    def wait_ms(self, wanted_ms: int) -> int:
        """The step's own bound, cut to what the request's deadline leaves (minus reading the page)."""
        room_ms = int((self.deadline.remaining() - READ_RESERVE_S) * 1000)
        if room_ms <= 0:
            raise self.out_of_time()
        self.waited_ms = min(wanted_ms, room_ms)
        self.cut_by_deadline = room_ms < wanted_ms
        return self.waited_ms

    async def run(self, page: Page) -> str | None:
        action, deadline = self.action, self.deadline
        self.cut_by_deadline = False
        if isinstance(action, ClickAction):
            timeout = self.wait_ms(action.timeout_ms)
            await deadline.run(self._first(page).click(timeout=timeout), "action", self.name)
        elif isinstance(action, TypeAction):
            timeout = self.wait_ms(action.timeout_ms)
            await deadline.run(self._first(page).fill(action.text, timeout=timeout), "action", self.name)
        elif isinstance(action, PressAction):
            timeout = self.wait_ms(action.timeout_ms)
            if action.selector is not None:
                await deadline.run(self._first(page).press(action.key, timeout=timeout), "action", self.name)
            else:
                await deadline.run(page.keyboard.press(action.key), "action", self.name)
        elif isinstance(action, ScrollAction):
            await deadline.run(page.evaluate(_scroll_script(action.to)), "action", self.name)
        elif isinstance(action, WaitForAction):
            timeout = self.wait_ms(action.timeout_ms)
            await deadline.run(self._first(page).wait_for(state=action.state, timeout=timeout), "action", self.name)
        elif isinstance(action, WaitMsAction):
            await deadline.run(asyncio.sleep(action.ms / 1000), "action", self.name)
        elif isinstance(action, ScrollUntilStableAction):
            return await self._scroll_until_stable(page, action)
        return None

    async def _scroll_until_stable(self, page: Page, action: ScrollUntilStableAction) -> str | None:
        """Scroll to the bottom; if the page grows within ``idle_ms``, again; stop when it does not."""
        for _ in range(action.max_steps):
            height = await self.deadline.run(page.evaluate(_HEIGHT), "action", self.name)
            await self.deadline.run(page.evaluate(_scroll_script("bottom")), "action", self.name)
            idle = self.wait_ms(action.idle_ms)
            try:
                await self.deadline.run(
                    page.wait_for_function(_GREW, arg=height, timeout=idle, polling="raf"), "action", self.name
                )
            except PlaywrightTimeout:
                if self.cut_by_deadline:
                    raise self.out_of_time() from None
                return None  # stable: did not grow within idle_ms
        return f"the page was still growing after max_steps={action.max_steps} scrolls; read as it was"

    def _first(self, page: Page) -> Locator:
        assert self.selector is not None
        return page.locator(self.selector).first

    async def diagnose(self, page: Page) -> FetchTimeout | ActionFailed:
        """Why a step's wait ran out: its element is missing, hidden, or never became usable."""
        if self.cut_by_deadline:
            return self.out_of_time()
        waited = f"within {self.waited_ms} ms"
        if self.selector is None:
            return self.failed(f"it did not complete {waited}")
        locator = page.locator(self.selector)
        try:
            count = await self.deadline.run(locator.count(), "action", self.name, cap_s=1.0)
            visible = count > 0 and await self.deadline.run(locator.first.is_visible(), "action", self.name, cap_s=1.0)
        except (TimeoutError, FetchTimeout, PlaywrightError):
            return self.failed(f"it did not complete {waited}")
        if isinstance(self.action, WaitForAction):
            state = self.action.state
            found = f"{count} element(s) match, {'visible' if visible else 'none visible'}"
            return self.failed(f"the element did not become {state} {waited} ({found})")
        if count == 0:
            return self.failed(f"no element matches {self.selector!r} (waited {self.waited_ms} ms)")
        if not visible:
            return self.failed(f"{self.selector!r} matches {count} element(s), but the first is not visible")
        return self.failed(f"{self.selector!r} did not become usable {waited} (covered, disabled or still moving)")

    def out_of_time(self) -> FetchTimeout:
        return FetchTimeout(
            f"The request's deadline of {self.deadline.timeout_s * 1000:.0f} ms ran out during {self.name}. "
            "Raise timeout_ms if the step needs longer, or check that the page can do it.",
            phase="action",
            step=self.index,
        )

    def failed(self, why: str) -> ActionFailed:
        return ActionFailed(
            f"The page loaded, but {self.name} failed: {why}. Check the step against the page (a fetch "
            "with formats ['html'] or ['raw_html'] shows it); sending the same steps again will not help.",
            step=self.index,
        )


def _scroll_script(to: str | int) -> str:
    if to == "top":
        return "() => window.scrollTo(0, 0)"
    if to == "bottom":
        return f"() => window.scrollTo(0, ({_HEIGHT})())"
    return f"() => window.scrollTo(0, {int(to)})"


def _closed(exc: PlaywrightError) -> bool:
    message = (exc.message or "").lower()
    return "has been closed" in message or "target closed" in message or "browser has disconnected" in message


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
