"""Admission: whether a fetch or an extract may start now — the per-caller limit and the shutdown drain.

Every fetch and extract enters through :meth:`Admission.run`, whichever adapter it came from (REST,
MCP over HTTP or stdio, the CLI), because the :class:`~browser_service.fetcher.Fetcher` calls it.
Two rules, both answered at once with ``overloaded`` (HTTP 503, ``Retry-After``) and never queued:

* **Concurrency per caller** (``BROWSER_SERVICE_KEY_CONCURRENCY``): a caller is an API key; one key
  cannot hold more fetches and extracts in progress than this, so one agent cannot take every
  browser slot and queue place from the others. The key itself is never kept: the adapters identify
  the caller by a SHA-256 digest of the presented token (:func:`caller_id`, set per request in the
  :data:`CALLER` context variable by :class:`IdentifyCaller`). With no keys configured there are no
  callers to tell apart — a local service, one tenant, the CLI, an in-process ``Fetcher`` — and no
  per-caller limit: the pool's bounded queue (``overloaded`` when full) bounds the service as a whole.
* **Draining** (graceful shutdown, ``shutdown.py``): once :meth:`Admission.begin_drain` is called
  nothing new starts; :meth:`Admission.drain` waits up to the grace period for the work in
  progress, then cuts what is left — cancels its task, which :meth:`Admission.run` turns into an
  ``overloaded`` answer saying the service is shutting down — so every request still gets exactly
  one typed answer before the browser is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from browser_service.contract import FetchResponse
from browser_service.errors import FetchError, Overloaded

log = logging.getLogger(__name__)

#: The caller when no API keys are configured (or outside a request): not limited per caller.
SHARED = "shared"
#: Who the current request is (a key digest or :data:`SHARED`); set by :class:`IdentifyCaller`.
CALLER: ContextVar[str] = ContextVar("browser_service_caller", default=SHARED)
#: What an agent is told to wait when its key is at its limit: its own requests free the turn.
BUSY_RETRY_AFTER_S = 1.0
#: What an agent is told to wait when the service is shutting down: a restart or another replica.
SHUTDOWN_RETRY_AFTER_S = 5.0
#: How long cut requests get to unwind (release their browser slot) before the drain gives up.
CUT_WAIT_S = 5.0
_CUT = "browser-service: shutdown grace period over"


def caller_id(authorization: str, api_keys: Sequence[str]) -> str:
    """The caller a request counts against: a digest of its bearer token, or :data:`SHARED`.

    Only the digest is kept (in memory, while the caller has requests in progress); the token is
    never stored or logged. An invalid token gets an id too, but such a request is refused (401)
    before it reaches the Fetcher.
    """
    if not api_keys:
        return SHARED
    token = authorization.partition(" ")[2].strip()
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]


class IdentifyCaller:
    """ASGI middleware: sets :data:`CALLER` for the request, so the Fetcher's admission can count it."""

    def __init__(self, app: ASGIApp, api_keys: Sequence[str]) -> None:
        self.app = app
        self.api_keys = tuple(api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = CALLER.set(caller_id(Headers(scope=scope).get("authorization", ""), self.api_keys))
        try:
            await self.app(scope, receive, send)
        finally:
            CALLER.reset(token)


@dataclass(eq=False)
class _Ticket:
    caller: str
    task: asyncio.Task[object] | None
    cut: bool = field(default=False)


class Admission:
    """Counts the work in progress per caller; refuses what is over the limit or arrives while draining."""

    def __init__(self, per_caller: int, grace_s: float = 10.0) -> None:
        self.per_caller = per_caller
        self.grace_s = grace_s
        self.draining = False
        self._counts: dict[str, int] = {}
        self._tickets: set[_Ticket] = set()
        self._changed: asyncio.Event | None = None

    @property
    def in_progress(self) -> int:
        return len(self._tickets)

    async def run(self, url: str, work: Callable[[], Awaitable[FetchResponse]]) -> FetchResponse:
        """Run ``work`` if admitted; its answer, or the typed refusal. Never raises (but CancelledError)."""
        try:
            ticket = self._enter(CALLER.get())
        except FetchError as refusal:
            return _answer(url, refusal)
        try:
            return await work()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            # Cut by the drain: answer it. Cancelled by anything else as well (the client left): propagate.
            if not ticket.cut or task is None or task.uncancel() > 0:
                raise
            return _answer(url, self._cut_error())
        finally:
            self._leave(ticket)

    def _enter(self, caller: str) -> _Ticket:
        if self.draining:
            raise Overloaded(
                "The service is shutting down and accepts no new requests. Retry in a few seconds: "
                "the restarted service or another instance will answer.",
                retry_after_s=SHUTDOWN_RETRY_AFTER_S,
            )
        running = self._counts.get(caller, 0)
        if caller != SHARED and running >= self.per_caller:
            raise Overloaded(
                f"This API key already has {running} requests in progress, the "
                f"most allowed at once (BROWSER_SERVICE_KEY_CONCURRENCY={self.per_caller}). Wait for one "
                "to finish, then retry; do not send more in parallel.",
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        self._counts[caller] = running + 1
        ticket = _Ticket(caller, asyncio.current_task())
        self._tickets.add(ticket)
        return ticket

    def _leave(self, ticket: _Ticket) -> None:
        self._tickets.discard(ticket)
        left = self._counts.get(ticket.caller, 1) - 1
        if left > 0:
            self._counts[ticket.caller] = left
        else:
            self._counts.pop(ticket.caller, None)  # no trace of an idle caller is kept
        if self._changed is not None:
            self._changed.set()

    def _cut_error(self) -> Overloaded:
        return Overloaded(
            f"The service is shutting down and this request did not finish within the shutdown grace "
            f"period of {self.grace_s:g} s (BROWSER_SERVICE_SHUTDOWN_GRACE_S), so it was stopped. Retry in "
            "a few seconds: the restarted service or another instance will answer.",
            retry_after_s=SHUTDOWN_RETRY_AFTER_S,
        )

    # --- shutdown ------------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Refuse new work from now on. Safe to call from a signal handler (one attribute write)."""
        self.draining = True

    async def drain(self) -> int:
        """Let the work in progress finish within the grace period, then cut the rest.

        Returns how many requests were cut. Each of those answers ``overloaded`` (its task is
        cancelled, its browser slot released on the way out) before this returns, or within
        :data:`CUT_WAIT_S` more.
        """
        self.begin_drain()
        if self._tickets:
            log.warning(
                "shutting down: waiting up to %g s for %d request(s) in progress", self.grace_s, len(self._tickets)
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled(), self.grace_s)
        left = list(self._tickets)
        for ticket in left:
            ticket.cut = True
            if ticket.task is not None:
                ticket.task.cancel(_CUT)
        if left:
            log.warning("shutting down: %d request(s) did not finish within the grace period; stopped", len(left))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled(), CUT_WAIT_S)
        return len(left)

    async def _settled(self) -> None:
        self._changed = self._changed or asyncio.Event()
        while self._tickets:
            self._changed.clear()
            await self._changed.wait()


def _answer(url: str, exc: FetchError) -> FetchResponse:
    return FetchResponse(ok=False, url=url, error=exc.info(), trace_id=uuid.uuid4().hex)
