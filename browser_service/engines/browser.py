"""The rendering path: a page from the pool, navigated, waited on, read — every step within the deadline.

Playwright calls such as ``page.evaluate()`` and CDP commands have no timeout of their own
(a page spinning in JavaScript never answers them), so every await here goes through
``Deadline.run``. Navigation errors are mapped to the same typed errors the HTTP engine raises.

The network policy holds in the browser too (``egress.py``): the URL is checked before the lease,
every connection by the egress proxy and, with ``browser_route_checks``, every request the page
makes by the slot's route guard first. A main-document navigation the policy refused — the first
one, a redirect hop, a meta refresh or script navigation, a form the page submits — fails the
fetch with ``forbidden_target`` naming the rule; refused sub-resources just do not load, and are
listed in a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

from playwright.async_api import CDPSession, Frame, Page, Request, Response
from playwright.async_api import Error as PlaywrightError

from browser_service.actions import run_actions
from browser_service.contract import Action, Phase, WaitUntil
from browser_service.deadline import Deadline
from browser_service.egress import PROXY_ERRORS
from browser_service.encoding import decode, utf8_safe
from browser_service.engines.base import RawPage, binary_signature, content_kind, header_charset, mime_type
from browser_service.engines.events import page_events
from browser_service.engines.frames import with_frames
from browser_service.engines.page_script import call, document_gone
from browser_service.engines.screenshot import capture
from browser_service.engines.settle import READ, SETTLE, PendingLoads
from browser_service.errors import (
    BrowserError,
    ConnectError,
    DNSError,
    EmptyContent,
    FetchError,
    FetchTimeout,
    ForbiddenTarget,
    HTTPStatusError,
    LoginRequired,
    TLSError,
    TooLarge,
    UnsupportedContent,
)
from browser_service.guard import NetworkPolicy, scheme_refusal
from browser_service.pool import BrowserPool, Lease
from browser_service.sessions import LiveSession

log = logging.getLogger(__name__)

#: Navigations a page may start by itself while being read before we give up on it.
MAX_SELF_NAVIGATIONS = 3


class BrowserEngine:
    def __init__(
        self,
        pool: BrowserPool,
        policy: NetworkPolicy,
        *,
        max_bytes: int,
        settle_cap_ms: int,
        settle_quiet_ms: int,
        challenge_wait_ms: int = 12_000,
        max_screenshot_bytes: int = 3 * 2**20,
    ) -> None:
        self._pool = pool
        self._policy = policy
        pool.use_policy(policy)  # one policy (and resolver) for the URL check, the routes and the proxy
        self._max_bytes = max_bytes
        self._settle_cap_s = settle_cap_ms / 1000
        self._settle_quiet_ms = settle_quiet_ms
        self._challenge_wait_s = challenge_wait_ms / 1000
        self._max_screenshot_bytes = max_screenshot_bytes

    async def fetch(
        self,
        url: str,
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        wait_until: WaitUntil | None = None,
        wait_for: str | None = None,
        wait_ms: int = 0,
        screenshot: bool = False,
        challenged: Callable[[RawPage], bool] | None = None,
        actions: Sequence[Action] | None = None,
        session: LiveSession | None = None,
    ) -> RawPage:
        """Render ``url``. ``challenged(page)`` says whether a page is a JavaScript challenge (``detect``
        decides; the engine does not judge content): such a page gets time to pass and navigate on.
        ``actions`` run once the page has settled (``actions.py``). With ``session`` the page runs in a
        context made from the session's state, and the state the page leaves goes back into it."""
        target = await self._policy.check(url, deadline)
        self._pool.egress.remember(target.host, target.port, target.addresses)  # one lookup, pinned
        async with self._pool.lease(deadline, storage_state=session.state if session else None) as lease:
            try:
                try:
                    return await self._render(
                        lease,
                        target.url,
                        deadline,
                        headers,
                        cookies,
                        wait_until,
                        wait_for,
                        wait_ms,
                        screenshot,
                        challenged,
                        actions,
                    )
                finally:
                    if session is not None:
                        await _snapshot(lease, deadline, session)
            except PlaywrightError as exc:
                if not lease.browser_alive():
                    raise _crashed(_first_line(exc)) from None
                raise BrowserError(
                    f"The browser failed on {url}: {_first_line(exc)}. Retry the request.", retryable=True
                ) from None

    async def _render(
        self,
        lease: Lease,
        url: str,
        deadline: Deadline,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        wait_until: WaitUntil | None,
        wait_for: str | None,
        wait_ms: int,
        screenshot: bool,
        challenged: Callable[[RawPage], bool] | None,
        actions: Sequence[Action] | None = None,
    ) -> RawPage:
        page = lease.page
        if headers:
            await deadline.run(lease.set_extra_headers(headers), "navigation")
        if cookies:
            await deadline.run(
                lease.context.add_cookies([{"name": k, "value": v, "url": url} for k, v in cookies.items()]),
                "navigation",
            )
        main_responses: list[Response] = []
        # Main-frame navigations started and ended (a response that is not a redirect, or a failure):
        # whether one is still in flight once the page has been read.
        started, ended = [0], [0]
        navigation_ended = asyncio.Event()
        top_responses: list[Response] = []

        loads = PendingLoads(page)

        def on_request(request: Request) -> None:
            loads.started(request)
            if request.redirected_from is None and _is_main(lease, request):
                started[0] += 1

        def on_response(response: Response) -> None:
            if response.request.is_navigation_request():
                main_responses.append(response)
                if _is_main(lease, response.request):
                    top_responses.append(response)
                    if not _is_redirect(response):
                        ended[0] += 1
                        navigation_ended.set()

        navigated = asyncio.Event()

        def on_navigated(frame: Frame) -> None:
            if frame == page.main_frame:
                navigated.set()

        # The answer the document now shown came with. Usually goto's own; but a page can replace
        # itself before it ever loads (a challenge that passes and reloads, a script redirect while
        # a slow script holds `load`), and goto then returns the *first* answer (a challenge's 403)
        # for a document that came with a later one. A document commits after its answer arrived.
        shown: list[Response | None] = [None]

        # Main-frame documents committed so far, to tell whether the page moved on after it was read.
        commits = [0]
        committed = asyncio.Event()

        def on_committed(frame: Frame) -> None:
            if frame == page.main_frame:
                commits[0] += 1
                committed.set()
                if top_responses:
                    shown[0] = top_responses[-1]

        failed: list[Request] = []

        # The main document's body failing after it committed (a corrupt gzip, a short body, a broken
        # chunk): Chromium then never fires `load`, and goto would wait out the deadline.
        broken: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_failed(request: Request) -> None:
            loads.ended(request)
            failed.append(request)
            if _is_main(lease, request):
                ended[0] += 1
                navigation_ended.set()
                failure = request.failure or ""
                answered = any(r.request is request for r in top_responses)
                if answered and "ERR_ABORTED" not in failure and not broken.done():
                    broken.set_result(failure)

        events = page_events(page)  # subscribed once per page, not per lease: 8 driver round trips
        events.on("request", on_request)
        events.on("response", on_response)
        events.on("requestfailed", on_failed)
        events.on("requestfinished", loads.ended)
        events.on("framenavigated", on_committed)
        try:
            try:
                response = await self._goto(page, url, deadline, wait_until or "load", main_responses, broken)
            except FetchError as exc:
                raise await self._refusal(lease, failed, top_responses, url, exc.message) or exc from None
            if shown[0] is not None and shown[0] is not response and not _is_redirect(shown[0]):
                response = shown[0]
            events.on("framenavigated", on_navigated)  # from here on: navigations the page starts itself
            done: list[str] = []
            if actions:
                # The steps act on the page as a reader would see it: loaded and settled first.
                if wait_until is None:
                    await self._settle(
                        lease.cdp, deadline, [], loads, response.headers.get("refresh") if response else None
                    )
                loaded = len(top_responses)
                done = await run_actions(page, actions, deadline)
                if len(top_responses) > loaded:  # a step navigated (a link, a form): read the new page
                    response = top_responses[-1]

            async def read(answer: Response | None) -> RawPage:
                """The page as the caller asked to read it (``answer``: the one its document came with)."""
                raw = await self._read_through_navigations(
                    page,
                    lease.cdp,
                    url,
                    deadline,
                    main_responses,
                    answer,
                    wait_until,
                    wait_for,
                    wait_ms,
                    screenshot and challenged is None,
                    loads,
                )
                raw.warnings.extend(done)
                return raw

            raw = await read(response)
            read_at = (commits[0], len(top_responses))  # what the page had done when it was read
            if challenged is not None and raw.kind == "html":
                if challenged(raw) and await self._outlast_challenge(page, deadline, navigated):
                    passed = main_responses[-1] if main_responses else None
                    raw = await self._read_through_navigations(
                        page, lease.cdp, url, deadline, main_responses, passed, None, None, 0, False, loads
                    )
                    raw.warnings.append("passed a JavaScript challenge in the browser")
                    read_at = (commits[0], len(top_responses))
                if screenshot:
                    raw.screenshot, clipped = await capture(page, deadline, self._max_screenshot_bytes)
                    raw.warnings += [clipped] if clipped else []
            # The page may have tried to navigate to a refused target meanwhile (a meta refresh, a
            # script setting location, a redirect after either): its real content is out of bounds.
            # A navigation still in flight gets a bounded wait to find out where it ends.
            until = time.monotonic() + min(self._settle_cap_s, deadline.remaining() - 0.5)
            while started[0] > ended[0] and time.monotonic() < until:
                navigation_ended.clear()
                with contextlib.suppress(TimeoutError):
                    await deadline.run(navigation_ended.wait(), "render", cap_s=until - time.monotonic())
            refused = await self._refusal(lease, failed, top_responses)
            if isinstance(refused, ForbiddenTarget):
                raise refused
            if await _moved_on(deadline, read_at, commits, committed, top_responses):
                # What was read is the page going away: a refresh or script navigation to a slow page
                # was still in flight when the read answered (the settle wait holds 1 s at most for
                # a page leaving). Read the page it landed on, with the same waits.
                landed = page.wait_for_load_state("load", timeout=0)
                await deadline.run(landed, "navigation", "after the page navigated")
                raw = await read(top_responses[-1])
            blocked, on_redirect = self._blocked(lease, failed)
            if blocked:
                raw.warnings.append(
                    f"the network policy blocked {len(blocked)} sub-request(s) of the page, which did not "
                    f"load: {'; '.join(blocked[:3])}{' …' if len(blocked) > 3 else ''}"
                )
            if on_redirect:
                raw.warnings.append(
                    f"{len(on_redirect)} sub-request(s) of the page were redirected to an address the network "
                    f"policy refuses or that could not be reached, and did not load: "
                    f"{'; '.join(on_redirect[:3])}{' …' if len(on_redirect) > 3 else ''}"
                )
            return raw
        finally:
            # The page outlives this lease.
            events.off("request", on_request)
            events.off("response", on_response)
            events.off("requestfailed", on_failed)
            events.off("requestfinished", loads.ended)
            events.off("framenavigated", on_navigated)
            events.off("framenavigated", on_committed)

    async def _refusal(
        self,
        lease: Lease,
        failed: list[Request],
        top_responses: list[Response],
        url: str | None = None,
        error: str | None = None,
    ) -> FetchError | None:
        """Why the main document did not load (``url`` failed with ``error``) or could not move on
        (a page that loaded), when the network policy knows: a navigation the route guard refused, a
        redirect to another scheme, or a tunnel the egress proxy refused or could not open (Chromium
        reports all of those as one opaque ``ERR_SOCKS_CONNECTION_FAILED``; the proxy remembers why)."""
        await asyncio.sleep(0)  # let "requestfailed" events already received be dispatched
        if lease.guard.refused_navigation is not None:
            return lease.guard.refused_navigation
        if error is not None and "ERR_UNSAFE_REDIRECT" in error:  # to file:, data:, chrome:, about: …
            return ForbiddenTarget(
                f"{url} redirected to a URL that is not http(s) (file:, data:, chrome: or the like), which is "
                f"refused: {scheme_refusal('non-http').message}"
            )
        main_failures = [r for r in failed if _is_main(lease, r)]
        for request in main_failures:
            scheme = urlsplit(request.url).scheme.lower()
            if scheme not in ("http", "https"):  # a redirect hop Chromium would not even try
                return ForbiddenTarget(
                    f"The page was redirected to {request.url}, which is refused: {scheme_refusal(scheme).message}"
                )
        candidates = [r.url for r in main_failures if _proxy_failure(r.failure)]
        if url is not None and _proxy_failure(error):
            candidates.insert(0, url)
            last = top_responses[-1] if top_responses else None
            if last is not None and _is_redirect(last):  # the hop that never loaded
                with contextlib.suppress(ValueError):  # a Location that is no URL: no candidate
                    candidates.append(urljoin(last.url, last.headers["location"].strip()))
        for candidate in reversed(candidates):
            failure = lease.egress.failure(*_host_port(candidate))
            if failure is not None:
                return failure
        return None

    @staticmethod
    def _blocked(lease: Lease, failed: list[Request]) -> tuple[list[str], list[str]]:
        """The lease's sub-requests the route guard or the egress proxy refused; and those that
        failed at the proxy on a redirect hop (Chromium sometimes reports a refused hop of a
        ``fetch()`` under the first URL, whose own host the proxy had no trouble with)."""
        blocked = list(lease.guard.blocked)
        on_redirect = []
        for request in failed:
            if not _proxy_failure(request.failure) or _is_main(lease, request):
                continue
            failure = lease.egress.failure(*_host_port(request.url))
            if isinstance(failure, ForbiddenTarget):
                blocked.append(f"{request.resource_type} {request.url} (refused by the egress proxy)")
            elif failure is None:
                on_redirect.append(f"{request.resource_type} {request.url}")
        return blocked, on_redirect

    async def _read_through_navigations(
        self,
        page: Page,
        cdp: CDPSession,
        url: str,
        deadline: Deadline,
        main_responses: list[Response],
        response: Response | None,
        wait_until: WaitUntil | None,
        wait_for: str | None,
        wait_ms: int,
        screenshot: bool,
        loads: PendingLoads,
    ) -> RawPage:
        """``_read``, again on the new document when the page navigates itself meanwhile (a script
        redirect, a challenge that passed): reading a document that is being replaced fails."""
        for _ in range(MAX_SELF_NAVIGATIONS):
            try:
                return await self._read(
                    page, cdp, url, deadline, response, wait_until, wait_for, wait_ms, screenshot, loads
                )
            except PlaywrightError as exc:
                if not document_gone(exc):
                    raise
            await deadline.run(page.wait_for_load_state("load", timeout=0), "navigation", "after the page navigated")
            response = main_responses[-1] if main_responses else response
        # The page's doing (a refresh or script reloading it at once, a loop of them), like the HTTP
        # engine's redirect loop: the same again would do the same, so it is not retried.
        raise HTTPStatusError(
            f"{page.url} kept navigating ({MAX_SELF_NAVIGATIONS} times) while being read: it reloads or "
            "redirects itself in a loop. Retrying will not help; render='http' reads the page as sent."
        )

    async def _outlast_challenge(self, page: Page, deadline: Deadline, navigated: asyncio.Event) -> bool:
        """Wait (bounded) for a challenge page to navigate to the real page, as it does once passed."""
        cap_s = min(self._challenge_wait_s, deadline.remaining() - 1.0)
        if cap_s <= 0:
            return False
        try:
            await deadline.run(navigated.wait(), "render", "waiting for the challenge to pass", cap_s=cap_s)
            await deadline.run(page.wait_for_load_state("load", timeout=0), "navigation", "after the challenge")
        except TimeoutError:
            return False
        return True

    async def _read(
        self,
        page: Page,
        cdp: CDPSession,
        url: str,
        deadline: Deadline,
        response: Response | None,
        wait_until: WaitUntil | None,
        wait_for: str | None,
        wait_ms: int,
        screenshot: bool,
        loads: PendingLoads,
    ) -> RawPage:
        """The page as it is once the waits asked for are over (or, for non-HTML, the bytes as sent)."""
        status = response.status if response else 200
        raw_headers = await deadline.run(response.all_headers(), "navigation") if response else {}
        mime = mime_type(raw_headers.get("content-type"))
        kind = content_kind(mime, b"") if mime else "html"
        if kind != "html":
            # JSON, text or binary: no DOM to render; take the bytes as the origin sent them.
            body = await self._body(response, deadline) if response and kind == "text" else b""
            kind = content_kind(mime, body)  # the bytes may be a binary format's, whatever the label
            raw = RawPage(
                url=url,
                final_url=page.url,
                status_code=status,
                headers=raw_headers,
                content_type=mime,
                kind=kind,
                body=body,
                text=None,
                engine="browser",
            )
            if kind == "text":
                raw.text, raw.charset, raw.warnings = decode(
                    body, header_charset(raw_headers.get("content-type")), html=False
                )
            return raw

        warnings: list[str] = []
        snapshot: Snapshot | None = None
        if wait_for is not None:
            try:
                await deadline.run(
                    page.wait_for_selector(wait_for, state="attached", timeout=0), "wait_for", repr(wait_for)
                )
            except FetchTimeout as exc:
                exc.message = (
                    f"The selector {wait_for!r} did not appear on {page.url} before the deadline. Check the "
                    "selector, or raise timeout_ms if the page is slow."
                )
                raise
        elif wait_until is None:
            try:
                snapshot = await self._settle(cdp, deadline, warnings, loads, raw_headers.get("refresh"))
            except PlaywrightError as exc:
                snapshot = await _read_plainly(page, deadline, warnings, exc)
        if wait_ms:
            await deadline.run(asyncio.sleep(wait_ms / 1000), "render", "during wait_ms")
            snapshot = None
        if snapshot is None:
            try:
                snapshot = cast(Snapshot, await deadline.run(call(cdp, READ), "render", "reading the page"))
            except PlaywrightError as exc:
                snapshot = await _read_plainly(page, deadline, warnings, exc)
        # A page's script can leave half an emoji (a lone surrogate) in its text or title; no answer can carry it.
        html, title = utf8_safe(str(snapshot.get("html") or "")), snapshot.get("title")
        title = utf8_safe(title) if isinstance(title, str) else title
        if response is not None and _garbled(html) and binary_signature(body := await self._body(response, deadline)):
            # An image or a PDF labelled text/html, which Chromium shows as text: garbage, not content.
            return RawPage(
                url=url,
                final_url=page.url,
                status_code=status,
                headers=raw_headers,
                content_type=mime,
                kind="binary",
                body=body,
                text=None,
                engine="browser",
            )
        html, xml_error = _without_xml_error(html)
        if xml_error is not None:
            warnings.append(
                f"the page is malformed XHTML ({xml_error}): Chromium showed it only up to the first error"
            )
        html, framed = await with_frames(page, cdp, html, deadline)
        if framed:
            warnings.append(f"the page's content is in frames: read with the documents of {framed} frame(s) in place")
        if len(html) > self._max_bytes:
            raise TooLarge(
                f"The rendered page is larger than the limit of {self._max_bytes:,} bytes (BROWSER_SERVICE_MAX_BYTES)."
            )
        shot = None
        if screenshot:
            shot, clipped = await capture(page, deadline, self._max_screenshot_bytes)
            warnings += [clipped] if clipped else []
        return RawPage(
            url=url,
            final_url=page.url,
            status_code=status,
            headers=raw_headers,
            content_type=mime or "text/html",
            kind="html",
            body=html.encode("utf-8"),
            text=html,
            engine="browser",
            charset="utf-8",
            title=str(title) if title else None,
            screenshot=shot,
            warnings=warnings,
        )

    async def _goto(
        self,
        page: Page,
        url: str,
        deadline: Deadline,
        wait_until: WaitUntil,
        responses: list[Response],
        broken: asyncio.Future[str],
    ) -> Response | None:
        """``page.goto``, ended early by ``broken`` (the main document's body failed: no `load` comes)."""
        goto = asyncio.ensure_future(page.goto(url, wait_until=wait_until, timeout=0))
        try:
            await deadline.run(asyncio.wait((goto, broken), return_when=asyncio.FIRST_COMPLETED), "navigation", url)
        finally:  # the deadline, or the caller cancelled
            if not goto.done():
                goto.cancel()
        if not goto.done() or goto.cancelled():
            raise _failure(broken.result(), url, broken.result()) from None
        try:
            return goto.result()
        except PlaywrightError as exc:
            # A document Chromium will not display (a PDF, an attachment, a 204) aborts the navigation;
            # the response we saw says what it was.
            if responses and ("ERR_ABORTED" in exc.message or "Download is starting" in exc.message):
                raise await _not_shown(responses[-1], deadline) from None
            raise _navigation_error(exc, url) from None

    async def _body(self, response: Response, deadline: Deadline) -> bytes:
        length = (await deadline.run(response.all_headers(), "body")).get("content-length", "")
        if length.isdigit() and int(length) > self._max_bytes:
            raise TooLarge(f"The response declares {int(length):,} bytes, over the limit of {self._max_bytes:,}.")
        body = await deadline.run(response.body(), "body")
        if len(body) > self._max_bytes:
            raise TooLarge(f"The response is larger than the limit of {self._max_bytes:,} bytes.")
        return body

    async def _settle(
        self, cdp: CDPSession, deadline: Deadline, warnings: list[str], loads: PendingLoads, refresh: str | None = None
    ) -> Snapshot | None:
        """Wait until the DOM settles (engines/settle.py); the page as it then is, read in the same call.
        ``refresh`` is the document's Refresh header, which the page cannot see.

        Settled with a load still in flight that the page cannot see (an ``import()``, a worker's
        fetch): wait for it, then settle again with the quiet time counted from its arrival — all
        within the one cap.
        """
        started = time.monotonic()
        cap_s = min(self._settle_cap_s, deadline.remaining())
        fresh = False
        while True:
            left_s = max(0.0, cap_s - (time.monotonic() - started))
            try:
                result: Snapshot = await deadline.run(
                    call(
                        cdp,
                        SETTLE,
                        self._settle_quiet_ms,
                        int(left_s * 1000),
                        fresh,
                        refresh,
                    ),
                    "render",
                    "waiting for the page to settle",
                    cap_s=left_s + 1.0,  # the script stops itself at the cap; this guards a page that hangs
                )
            except TimeoutError:
                warnings.append("the page kept its main thread busy past the settle cap")
                return None
            if not result.get("settled", True) or loads.idle.is_set():
                break
            try:
                await deadline.run(
                    loads.idle.wait(),
                    "render",
                    "waiting for the scripts and data the page is loading",
                    cap_s=cap_s - (time.monotonic() - started),
                )
            except TimeoutError:
                result["settled"] = False
                result["waited_ms"] = round((time.monotonic() - started) * 1000)
                break
            fresh = True
        if not result.get("settled", True):
            warnings.append(
                f"the page was still changing after {result.get('waited_ms')} ms "
                f"({result.get('inflight')} requests, {result.get('timers')} timers"
                + (f", {len(loads)} loads" if loads else "")
                + " pending); read it as it was. Use wait_for to wait for a specific element."
            )
        return result


Snapshot = dict[str, Any]

#: Longest wait for a document to commit once its answer has come.
COMMIT_WAIT_S = 1.0


async def _moved_on(
    deadline: Deadline,
    read_at: tuple[int, int],
    commits: list[int],
    committed: asyncio.Event,
    top_responses: list[Response],
) -> bool:
    """Whether the main frame committed another document after the page was read (``read_at``: the
    commits and main-frame answers counted then). An answer that came after the read (not a
    redirect, not a 204) is followed by its document's commit: waited for, ``COMMIT_WAIT_S`` at most
    (a download never commits)."""
    read_commits, read_responses = read_at
    last = top_responses[-1] if len(top_responses) > read_responses else None
    if last is not None and not _is_redirect(last) and last.status not in (204, 205):
        until = time.monotonic() + min(COMMIT_WAIT_S, deadline.remaining())
        while commits[0] == read_commits and time.monotonic() < until:
            committed.clear()
            with contextlib.suppress(TimeoutError):
                await deadline.run(committed.wait(), "render", "the page moving on", cap_s=until - time.monotonic())
    return commits[0] > read_commits


async def _read_plainly(page: Page, deadline: Deadline, warnings: list[str], error: PlaywrightError) -> Snapshot:
    """The page as Playwright reads it, from its own isolated world, which the page's scripts cannot
    reach — when the page broke the DOM calls the engine's read makes in the page's world (a library
    replacing a built-in prototype's method, a getter that throws): no settle wait then. Raises
    ``error`` again when the document went away meanwhile (the caller reads the new one)."""
    if document_gone(error):
        raise error
    warnings.append(
        f"the page's scripts broke the browser's reading of it ({_first_line(error)}): read as it was, "
        "without waiting for it to settle"
    )
    html = await deadline.run(page.content(), "render", "reading the page")
    title = await deadline.run(page.title(), "render", "reading the page")
    return {"html": html, "title": title}

#: Longest wait for a session's storage state once the page has been read.
SNAPSHOT_CAP_S = 2.0


async def _snapshot(lease: Lease, deadline: Deadline, session: LiveSession) -> None:
    """Take the context's cookies and localStorage into the session (before the lease ends). Within
    the deadline: a request whose time is up keeps the session's previous state."""
    try:
        state = await deadline.run(lease.context.storage_state(), "render", "saving the session", cap_s=SNAPSHOT_CAP_S)
    except (TimeoutError, FetchError, PlaywrightError) as exc:
        log.warning("session state not captured", extra={"error": repr(exc)})
        return
    session.absorb_browser(cast(dict[str, Any], state))


def _is_main(lease: Lease, request: Request) -> bool:
    return lease.guard.is_main_navigation(request)


def _proxy_failure(error: str | None) -> bool:
    return error is not None and any(code in error for code in PROXY_ERRORS)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme in ("https", "wss") else 80)


_NET_ERRORS: dict[str, type[FetchError]] = {
    "ERR_NAME_NOT_RESOLVED": DNSError,
    "ERR_NAME_RESOLUTION_FAILED": DNSError,
    "ERR_CONNECTION_REFUSED": ConnectError,
    "ERR_CONNECTION_RESET": ConnectError,
    "ERR_CONNECTION_CLOSED": ConnectError,
    "ERR_CONNECTION_FAILED": ConnectError,
    "ERR_EMPTY_RESPONSE": ConnectError,
    "ERR_ADDRESS_UNREACHABLE": ConnectError,
    "ERR_INVALID_RESPONSE": ConnectError,
    "ERR_CONTENT_LENGTH_MISMATCH": ConnectError,
    "ERR_INCOMPLETE_CHUNKED_ENCODING": ConnectError,
    "ERR_INVALID_CHUNKED_ENCODING": ConnectError,
    "ERR_CONTENT_DECODING_FAILED": ConnectError,
    # A response that breaks HTTP (the HTTP engine's RemoteProtocolError, also a connection_error).
    "ERR_INVALID_HTTP_RESPONSE": ConnectError,
    "ERR_RESPONSE_HEADERS_TOO_BIG": ConnectError,
    "ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_LENGTH": ConnectError,
    "ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_DISPOSITION": ConnectError,
    "ERR_RESPONSE_HEADERS_MULTIPLE_LOCATION": ConnectError,
    "ERR_TIMED_OUT": FetchTimeout,
    "ERR_CONNECTION_TIMED_OUT": FetchTimeout,
    "ERR_TOO_MANY_REDIRECTS": HTTPStatusError,
}


async def _not_shown(response: Response, deadline: Deadline) -> FetchError:
    """Why Chromium did not display the document ``response`` brought."""
    if response.status in (204, 205):  # no content: Chromium stays where it was, as the HTTP spec says
        return EmptyContent(f"{response.url} answered HTTP {response.status}: no content.", status_code=response.status)
    headers = await deadline.run(response.all_headers(), "navigation")
    mime = mime_type(headers.get("content-type"))
    if "attachment" in headers.get("content-disposition", "").lower():
        return UnsupportedContent(
            f"{response.url} is sent as a download (Content-Disposition: attachment, {mime or 'no type'}), "
            "which the browser saves rather than shows. render='http' reads it when it is HTML, JSON or text.",
            status_code=response.status,
        )
    return UnsupportedContent(
        f"{response.url} is {mime or 'a download'}, which this service does not convert to text "
        "(HTML, JSON and plain text are supported).",
        status_code=response.status,
    )


#: The report Chromium puts at the top of an XHTML (or XML) document that does not parse, above the
#: part it could render: its own words, which would otherwise be read as the page's first lines.
_XML_ERROR = re.compile(r"<parsererror\b[^>]*>(.*?)</parsererror>", re.S)
_XML_ERROR_DETAIL = re.compile(r"<div[^>]*>(.*?)</div>", re.S)


def _garbled(html: str) -> bool:
    """Whether the page's text starts with control characters, as a binary file read as text does
    (then, and only then, its bytes are worth a look)."""
    start = html.find("<body")
    head = html[start : start + 400] if start >= 0 else html[:400]
    return sum(1 for c in head if (ord(c) < 32 and c not in "\t\n\r\f") or c == "\ufffd") >= 2


def _without_xml_error(html: str) -> tuple[str, str | None]:
    """``html`` without Chromium's XML error report, and the error it names (None: there was none)."""
    if "<parsererror" not in html:
        return html, None
    match = _XML_ERROR.search(html)
    if match is None:
        return html, None
    detail = _XML_ERROR_DETAIL.search(match[1])
    error = " ".join((detail[1] if detail else "does not parse").split())
    return html[: match.start()] + html[match.end() :], error


def _is_redirect(response: Response) -> bool:
    """Whether Chromium follows this answer to another: a 3xx with a Location. One without (an
    empty ``Location:``, a 304) is the page itself."""
    return 300 <= response.status < 400 and bool(response.headers.get("location", "").strip())


def _navigation_error(exc: PlaywrightError, url: str) -> FetchError:
    return _failure(exc.message or "", url, _first_line(exc))


def _failure(message: str, url: str, first_line: str) -> FetchError:
    """The typed error for a navigation that failed with Chromium's ``message`` (``net::ERR_…``)."""
    if "ERR_INVALID_AUTH_CREDENTIALS" in message:  # a 401 asking for HTTP auth; Playwright cancels it
        return LoginRequired(
            f"{url} requires signing in: it answered HTTP 401 asking for HTTP authentication "
            "(WWW-Authenticate). Send an Authorization header if you have credentials; retrying without will not help.",
            status_code=401,
        )
    if "ERR_UNEXPECTED_PROXY_AUTH" in message:  # a 407 from the origin itself, not from a proxy
        return HTTPStatusError(
            f"{url} answered HTTP 407 (proxy authentication required) though no proxy was asked; "
            "retrying will not help.",
            status_code=407,
        )
    if "ERR_INVALID_REDIRECT" in message:  # a Location that is no URL (http://[bad/): as the HTTP engine says
        return HTTPStatusError(
            f"{url} redirected to a Location that is not a valid URL (net::ERR_INVALID_REDIRECT in the "
            "browser); retrying will not help."
        )
    for code, cls in _NET_ERRORS.items():
        if code in message:
            phase: Phase | None = "navigation" if cls is FetchTimeout else None
            return cls(f"Loading {url} in the browser failed: net::{code}.", phase=phase)
    if "ERR_CERT" in message or "ERR_SSL" in message:
        return TLSError(f"TLS with {url} failed in the browser ({first_line}); retrying will not help.")
    if "closed" in message.lower():
        return _crashed(first_line)
    return BrowserError(f"Loading {url} in the browser failed: {first_line}.", retryable=True)


def _crashed(first_line: str) -> BrowserError:
    return BrowserError(
        f"The browser crashed or was closed during the request ({first_line}); it is being "
        "relaunched. Retry the request.",
        retryable=True,
        retry_after_s=1,
    )


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
