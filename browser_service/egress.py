"""The browser's network policy: every request checked, every connection pinned to a checked address.

Two layers. The egress proxy holds the policy by itself (tests/security runs every browser vector
with the route guard off too — the default); the optional route guard adds what a connection does
not tell — which request, of which frame — and stops a request before Chromium even asks for a
connection:

:class:`PageGuard` — Playwright route interception on each slot's context (``context.route``;
    on with ``BROWSER_SERVICE_BROWSER_ROUTE_CHECKS=true``, at a driver round trip per request)
    Sees every request the pages make — documents, iframes, popups, scripts, styles, images,
    fetch/XHR, beacons, prefetches, form submissions, meta refresh and script navigations — with
    its URL, resource type and frame. A refused request is aborted (``blockedbyclient``) before
    Chromium opens any connection; a refused *main-document* navigation is recorded so the engine
    fails the fetch with ``forbidden_target`` naming the rule, while refused sub-resources are
    counted for a warning. Verdicts are cached per lease by ``(scheme, host, port)``, so a page
    with 50 images on one host costs one check. What it cannot see: redirect hops (Playwright
    continues them itself), WebSockets, ``<link rel=preconnect>`` (a bare connection, no request)
    and a name that resolves differently when Chromium looks it up again (DNS rebinding).

:class:`Egress` — a SOCKS5 proxy on loopback, Chromium's only way out
    The pool launches Chromium with ``--proxy-server=socks5://127.0.0.1:<port>``, loopback not
    bypassed, its own DNS switched off (``--host-resolver-rules=MAP * ~NOTFOUND``) and QUIC and
    non-proxied WebRTC UDP disabled. With SOCKS5, Chromium hands the proxy the *name*; the proxy
    resolves it through the policy, checks every address and connects to a checked one — so
    redirect hops, WebSockets, preconnects and rebinding are all held to the policy, and a name
    is resolved once per check (answers are shared with the route layer for a few seconds, so a
    page's hosts are resolved once, not twice). Refusals and connection failures are recorded by
    ``host:port`` so the engine can turn Chromium's opaque ``ERR_SOCKS_CONNECTION_FAILED`` back
    into ``forbidden_target``, ``dns_error`` or ``connection_error``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Route

from browser_service.deadline import Deadline
from browser_service.errors import ConnectError, DNSError, FetchError, FetchTimeout, ForbiddenTarget
from browser_service.guard import IPAddress, NetworkPolicy, canonical_host, scheme_refusal

log = logging.getLogger(__name__)

#: How long a checked DNS answer is reused by the route layer and the proxy.
ANSWER_TTL_S = 5.0
#: Bounds for the proxy's own waits: the SOCKS handshake, resolving, connecting to the origin.
HANDSHAKE_TIMEOUT_S = 10.0
RESOLVE_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 15.0
#: Chromium's error for a tunnel the proxy refused or could not open.
PROXY_ERRORS = ("ERR_SOCKS_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED", "ERR_TUNNEL_CONNECTION_FAILED")
#: Schemes that never reach the network (or never leave Chromium): not the policy's business.
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
_LOCAL_ABOUT = frozenset({"about:blank", "about:srcdoc"})

_SOCKS_OK, _SOCKS_FAILURE, _SOCKS_NOT_ALLOWED, _SOCKS_HOST_UNREACHABLE, _SOCKS_REFUSED = 0, 1, 2, 4, 5
_SOCKS_TTL_EXPIRED, _SOCKS_BAD_COMMAND, _SOCKS_BAD_ADDRESS = 6, 7, 8


class Egress:
    """A SOCKS5 CONNECT proxy (on 127.0.0.1 unless ``host`` says otherwise, for remote browsers) that
    resolves through the policy and pins connections."""

    def __init__(self, policy: NetworkPolicy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.policy = policy
        self.host = host
        self._listen_port = port
        self.port: int | None = None
        self.tunnels_opened = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._answers: dict[tuple[str, int], tuple[float, tuple[IPAddress, ...]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[tuple[IPAddress, ...]]] = {}
        self._failures: collections.OrderedDict[tuple[str, int], tuple[float, FetchError]] = collections.OrderedDict()

    @property
    def open_tunnels(self) -> int:
        """Connections open through the proxy now (each holds two sockets: Chromium's and the origin's)."""
        return len(self._tasks)

    @property
    def server(self) -> str:
        assert self.port is not None, "Egress.start() first"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"socks5://{host}:{self.port}"

    async def start(self) -> str:
        if self._server is None:
            # Connections are served in the context the server was started in. A fresh one: else
            # every tunnel's spans (its DNS lookups) would count in the trace of whichever fetch
            # launched the browser — Chromium's own background lookups included.
            self._server = await asyncio.create_task(
                asyncio.start_server(self._serve, self.host, self._listen_port), context=contextvars.Context()
            )
            self.port = self._server.sockets[0].getsockname()[1]
        return self.server

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    # --- checked answers -----------------------------------------------------------------------

    async def checked(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """``policy.resolve_checked``, with answers reused for ``ANSWER_TTL_S`` and lookups shared.

        Only *checked* answers are kept, so reusing one never lets a connection reach an address
        the policy refuses; errors are not kept.
        """
        key = (host, port)
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.policy.resolve_checked(host, port, Deadline(RESOLVE_TIMEOUT_S)))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(pending)

    def remember(self, host: str, port: int, addresses: tuple[IPAddress, ...]) -> None:
        """Reuse an answer already checked elsewhere (the engine's URL check): the page's first
        request then connects to the very addresses that check approved, without a second lookup."""
        if len(self._answers) > 4096:
            self._answers.clear()
        self._answers[(canonical_host(host), port)] = (time.monotonic() + ANSWER_TTL_S, addresses)

    def _settle(self, key: tuple[str, int], done: asyncio.Future[tuple[IPAddress, ...]]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            self.remember(*key, done.result())

    def failure(self, host: str, port: int, max_age_s: float = 60.0) -> FetchError | None:
        """Why the proxy last refused or failed a tunnel to ``host:port`` (recently), if it did."""
        record = self._failures.get((canonical_host(host), port))
        if record is None or time.monotonic() - record[0] > max_age_s:
            return None
        return record[1]

    def _fail(self, host: str, port: int, error: FetchError) -> None:
        key = (host, port)
        self._failures.pop(key, None)
        self._failures[key] = (time.monotonic(), error)
        while len(self._failures) > 1024:
            self._failures.popitem(last=False)

    # --- the SOCKS5 server ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                    host, port, code = await _handshake(reader, writer)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                return
            if code != _SOCKS_OK:
                writer.write(_reply(code))
                return
            try:
                up_reader, upstream = await self._connect(host, port)
            except _Refusal as refusal:
                writer.write(_reply(refusal.code))
                return
            self.tunnels_opened += 1
            writer.write(_reply(_SOCKS_OK))
            await _splice(reader, writer, up_reader, upstream)
        except asyncio.CancelledError:
            pass  # closing: asyncio's server would log a cancelled connection handler as an error
        finally:
            self._tasks.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            addresses = await self.checked(host, port)
        except ForbiddenTarget as exc:
            self.refused += 1
            self._fail(host, port, exc)
            log.info("egress refused", extra={"host": host, "port": port, "reason": exc.message})
            raise _Refusal(_SOCKS_NOT_ALLOWED) from None
        except DNSError as exc:
            self._fail(host, port, exc)
            raise _Refusal(_SOCKS_HOST_UNREACHABLE) from None
        except FetchTimeout:
            self._fail(host, port, DNSError(f"Resolving {host} timed out."))
            raise _Refusal(_SOCKS_HOST_UNREACHABLE) from None
        reason = "refused"
        for ip in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    return await asyncio.open_connection(str(ip), port)
            except TimeoutError:
                reason = "timed out"
            except OSError as exc:
                reason = exc.strerror or "refused"
        self._fail(
            host,
            port,
            ConnectError(
                f"Could not connect to {host}:{port} ({reason}). The server is down or unreachable; retry later.",
                phase="connect",
            ),
        )
        raise _Refusal(_SOCKS_TTL_EXPIRED if reason == "timed out" else _SOCKS_REFUSED)


class _Refusal(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _reply(code: int) -> bytes:
    return bytes((5, code, 0, 1, 0, 0, 0, 0, 0, 0))


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int, int]:
    """RFC 1928, no authentication, CONNECT only: the requested host, port and a reply code."""
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != 5 or 0 not in methods:
        writer.write(b"\x05\xff")
        raise ValueError("not a SOCKS5 client without authentication")
    writer.write(b"\x05\x00")
    version, command, _, kind = await reader.readexactly(4)
    if kind == 1:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif kind == 4:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif kind == 3:
        length = (await reader.readexactly(1))[0]
        host = (await reader.readexactly(length)).decode("ascii", "replace")
    else:
        return "", 0, _SOCKS_BAD_ADDRESS
    port = int.from_bytes(await reader.readexactly(2), "big")
    if version != 5 or command != 1:
        return host, port, _SOCKS_BAD_COMMAND
    return canonical_host(host), port, _SOCKS_OK


async def _splice(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides are done (half-closes passed on), or either fails."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    pumps = [asyncio.ensure_future(pump(a_reader, b_writer)), asyncio.ensure_future(pump(b_reader, a_writer))]
    try:
        done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        # A reset on one side drops both (the caller closes them); otherwise wait for the other side.
        if pending and not any(t.cancelled() or t.exception() is not None for t in done):
            await asyncio.wait(pending)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


# --- the route layer ------------------------------------------------------------------------------


@dataclass
class PageGuard:
    """One slot's route handler and what it refused during the current lease."""

    egress: Egress
    page: Page | None = None
    #: The first refused main-document navigation of the lease: the fetch fails with it.
    refused_navigation: FetchError | None = None
    #: Refused sub-requests: "resource type URL (rule)".
    blocked: list[str] = field(default_factory=list)
    _verdicts: dict[tuple[str, str, int], FetchError | None] = field(default_factory=dict)

    def begin(self, page: Page) -> None:
        """A new lease starts: forget the last one's verdicts and refusals."""
        self.page = page
        self.refused_navigation = None
        self.blocked = []
        self._verdicts = {}

    def end(self) -> None:
        """The lease is over: until the next one, nothing the slot's pages ask for is let through."""
        self.page = None

    @property
    def leased(self) -> bool:
        return self.page is not None

    async def handle(self, route: Route) -> None:
        request = route.request
        if self.page is None:  # a page of a finished lease (a late popup, a timer): nothing loads
            with contextlib.suppress(PlaywrightError):
                await route.abort("blockedbyclient")
            return
        main = self.is_main_navigation(request)
        try:
            refusal = await self.verdict(request.url)
        except Exception as exc:  # fail closed: a request we could not judge does not go out
            log.warning("route check failed", extra={"url": request.url, "error": repr(exc)})
            refusal = ForbiddenTarget(f"{request.url} could not be checked against the network policy.")
        try:
            if refusal is None:
                await route.continue_()
                return
            if isinstance(refusal, ForbiddenTarget):
                self._note(request, refusal, main)
                await route.abort("blockedbyclient")
            else:
                await route.abort("namenotresolved" if isinstance(refusal, DNSError) else "failed")
        except PlaywrightError:
            pass  # the page or context closed meanwhile: nothing left to let through or block

    async def verdict(self, url: str) -> FetchError | None:
        """None if ``url`` may be requested; else why not (``ForbiddenTarget`` or ``DNSError``)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ws", "wss"):
            if scheme in _LOCAL_SCHEMES and (scheme != "about" or url in _LOCAL_ABOUT):
                return None
            return scheme_refusal(scheme)
        try:
            host = canonical_host(parts.hostname or "")
            port = parts.port or (443 if scheme in ("https", "wss") else 80)
        except ValueError as exc:
            return ForbiddenTarget(f"{url} is not a valid URL ({exc}).")
        key = (scheme, host, port)
        if key in self._verdicts:
            return self._verdicts[key]
        verdict: FetchError | None = None
        try:
            await self.egress.checked(host, port)
        except (ForbiddenTarget, DNSError) as exc:
            verdict = exc
        except FetchTimeout:
            verdict = DNSError(f"Resolving {host} timed out.")
        self._verdicts[key] = verdict
        return verdict

    def is_main_navigation(self, request: Request) -> bool:
        if not request.is_navigation_request():
            return False
        try:
            frame = request.frame
        except PlaywrightError:  # a service worker's request has no frame
            return False
        return frame.parent_frame is None and frame.page is self.page

    def _note(self, request: Request, refusal: ForbiddenTarget, main: bool) -> None:
        if main:
            if self.refused_navigation is None:
                self.refused_navigation = refusal
        else:
            rule = refusal.message.rpartition("(rule: ")[2].split(")")[0] or "policy"
            self.blocked.append(f"{request.resource_type} {request.url} ({rule})")
