"""Run a script in the page's main world over the slot's own CDP session.

The engine reads every page with one script (the settle wait, then the snapshot). Playwright's
``page.evaluate`` would do it, but it first injects a serialising helper script into each new
document it evaluates in, and with a fresh document per lease that is a cost per page: the bench's
reference pattern (8 slots, concurrency 8) spent 4–8 ms more CPU per page reading with
``page.evaluate`` than with ``Runtime.evaluate``, against ~84 ms in all (``bench/lease_steps.py``,
two runs; docs/architecture.md). What the engine reads is plain JSON (strings, numbers, booleans),
which ``returnByValue`` carries as well.

Failures keep Playwright's shape, so callers handle one kind: a script that throws or rejects
raises :class:`playwright.async_api.Error` with the script's message, and a document that goes away
meanwhile (the page navigated) raises one saying "Execution context was destroyed", as Playwright's
own ``evaluate`` does.
"""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import CDPSession
from playwright.async_api import Error as PlaywrightError

#: What Chromium answers when the document a script ran in (or was about to run in) is gone.
_DOCUMENT_GONE = (
    "Inspected target navigated or closed",
    "Execution context was destroyed",
    "Cannot find default execution context",
    "Cannot find context with specified id",
)
DOCUMENT_GONE = "Execution context was destroyed, most likely because of a navigation."


def document_gone(error: PlaywrightError) -> bool:
    """Whether ``error`` (from :func:`call` or Playwright's own ``evaluate``) says the document went away."""
    return "context was destroyed" in error.message


async def call(cdp: CDPSession, function: str, *args: Any) -> Any:
    """``function`` (a JavaScript function's source) called with the JSON values ``args`` in the
    main frame's document; its result, awaited if it is a promise, as JSON."""
    expression = f"({function})({', '.join(json.dumps(arg) for arg in args)})"
    try:
        answer = await cdp.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True, "silent": True},
        )
    except PlaywrightError as exc:
        if any(gone in exc.message for gone in _DOCUMENT_GONE):
            raise PlaywrightError(DOCUMENT_GONE) from None
        raise
    details = answer.get("exceptionDetails")
    if details is not None:
        exception = details.get("exception") or {}
        raise PlaywrightError(str(exception.get("description") or details.get("text") or "the script failed"))
    return answer.get("result", {}).get("value")
