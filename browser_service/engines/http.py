"""The fast path: a plain HTTP GET with httpx.

Redirects are followed here, hop by hop, so the network policy checks every hop and the hop count
is ours to bound. The body is streamed with a size cap (checked on the decompressed bytes, so a
gzip bomb stops at the cap too) and every await is bounded by the request's deadline.

**DNS pinning.** The guard resolves a hop's host once and checks every address; the connection is
then made to those addresses, not to the name (:class:`PinnedBackend`, an httpcore network backend),
so a DNS answer that changes between the check and the connection cannot point it elsewhere. The
name still goes in the Host header and in TLS (SNI and certificate verification are against the
hostname: httpcore passes the URL's host as ``server_hostname`` whatever address the socket has).
"""

from __future__ import annotations

import contextvars
import http.cookiejar
import ssl
import typing
from collections.abc import Mapping
from urllib.parse import urljoin

import httpcore
import httpx

from browser_service.contract import Phase
from browser_service.deadline import Deadline
from browser_service.encoding import decode
from browser_service.engines.base import RawPage, content_kind, header_charset, mime_type
from browser_service.engines.refresh import page_refresh
from browser_service.errors import (
    ConnectError,
    FetchError,
    ForbiddenTarget,
    HTTPStatusError,
    InvalidRequest,
    TLSError,
    TooLarge,
)
from browser_service.guard import IPAddress, NetworkPolicy

_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: Bound for resolving a host the engine did not check itself (see PinnedBackend.connect_tcp).
_RESOLVE_TIMEOUT_S = 30.0

#: Response headers as large as Chromium takes (net::kMaxHeadersSize, 256 kB), not httpcore's 100 kB:
#: a page whose cookies and policies add up to 150 kB loaded in the browser and was a
#: connection_error over HTTP — and render=auto, answered by the HTTP engine, never got to the browser.
httpcore.AsyncHTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE = 256 * 1024

#: The addresses the guard checked for the hop being sent, by (host, port): connections go there.
_PINNED: contextvars.ContextVar[Mapping[tuple[str, int], tuple[IPAddress, ...]] | None] = contextvars.ContextVar(
    "pinned_addresses", default=None
)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects to checked addresses only.

    ``connect_tcp(host, port)`` takes the addresses the guard checked for this hop; a host it was
    not given (nothing in this engine does that, but a pooled connection may be opened by another
    request's task) is resolved and checked here, once, and the connection goes to that answer.
    """

    def __init__(self, policy: NetworkPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = (_PINNED.get() or {}).get((host, port))
        if addresses is None:
            addresses = await self._policy.resolve_checked(host, port, Deadline(timeout or _RESOLVE_TIMEOUT_S))
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next checked address, as a resolver-driven connect would
        assert failure is not None  # resolve_checked never returns no address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not reachable through the network policy.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Redirect(Exception):
    def __init__(self, status: int, location: str, response: httpx.Response) -> None:
        self.status = status
        self.location = location
        self.response = response


async def _stop_at_redirects(response: httpx.Response) -> None:
    """A response hook: hand a redirect to ``fetch`` (which checks and follows it) before httpx itself
    parses the Location — httpx raises ``InvalidURL`` on one such as ``data:…`` even when not following."""
    location = response.headers.get("location")
    if response.status_code in _REDIRECTS and location:
        raise _Redirect(response.status_code, location, response)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool built on :class:`PinnedBackend`."""

    def __init__(self, policy: NetworkPolicy, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx (< 1) offers no way to hand its httpcore pool a network backend: replace the pool it
        # built with the same pool on ours. tests/security/test_ssrf.py fails if this stops working.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(policy),
        )


class HttpEngine:
    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        user_agent: str,
        max_bytes: int,
        max_redirects: int,
        refresh_within_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        # A refresh due this soon is followed as a redirect: the browser's settle cap, so both
        # engines answer alike (engines/refresh.py).
        self._refresh_within_s = refresh_within_s
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept": _ACCEPT, "Accept-Language": "en-US,en;q=0.9"},
            timeout=None,  # every await is bounded by the request's Deadline instead
            limits=limits,
            # A transport given by the caller (tests) is used as is, without pinning.
            transport=transport or PinnedTransport(policy, limits=limits),
            event_hooks={"response": [_stop_at_redirects]},
            trust_env=False,  # never route through a proxy from the environment by surprise
            # The client is shared by every request: it must keep no cookies (httpx's default jar
            # would hand one request's Set-Cookie to the next). A session brings its own jar.
            cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        jar: httpx.Cookies | None = None,
    ) -> RawPage:
        """GET ``url``, following redirects — and a refresh to another URL due within the settle cap,
        as the browser would. ``jar`` (a session's) is sent from and receives every hop's
        Set-Cookie, as a browser's would."""
        redirects: list[str] = []
        current = url
        status, hop = 0, ""
        while True:
            try:
                target = await self._policy.check(current, deadline)
            except (ForbiddenTarget, InvalidRequest) as exc:
                if not redirects:
                    raise
                raise _refused_redirect(exc, redirects[-1], hop, status, current) from None
            pinned = _PINNED.set({(target.host, target.port): target.addresses})
            try:
                page_or_location = await self._get(target.url, deadline, headers or {}, cookies or {}, jar)
            finally:
                _PINNED.reset(pinned)
            if isinstance(page_or_location, RawPage):
                page = page_or_location
                html = page.text if page.kind == "html" else None
                refresh = page_refresh(html, page.headers.get("refresh"), target.url)
                if refresh is None or refresh.delay_s > self._refresh_within_s:
                    page.url = url
                    page.redirects = redirects
                    return page
                status, hop, location = page.status_code, f"refreshed ({refresh.delay_s} s)", refresh.url
            else:
                status, location = page_or_location
                hop = f"redirected ({status})"
            redirects.append(target.url)
            if len(redirects) > self._max_redirects:
                raise HTTPStatusError(
                    f"More than {self._max_redirects} redirects starting at {url} (last: {hop} to "
                    f"{location}). The site is in a redirect loop or needs cookies this request lacks.",
                    status_code=status,
                )
            try:
                current = urljoin(target.url, location)
            except ValueError as exc:  # "http://[bad/": the policy's check never sees it
                raise _refused_redirect(InvalidRequest(str(exc)), target.url, hop, status, location) from None

    async def _get(
        self,
        url: str,
        deadline: Deadline,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        jar: httpx.Cookies | None = None,
    ) -> RawPage | tuple[int, str]:
        request = self._client.build_request("GET", url, headers=dict(headers))
        sent: list[str] = []
        if jar is not None:
            jar.set_cookie_header(request)
            sent = [request.headers["Cookie"]] if "Cookie" in request.headers else []
        if cookies or sent:
            request.headers["Cookie"] = "; ".join([*sent, *(f"{k}={v}" for k, v in cookies.items())])
        phase: Phase = "response"
        response: httpx.Response | None = None
        try:
            try:
                response = await deadline.run(self._client.send(request, stream=True), "response", url)
            except _Redirect as redirect:
                if jar is not None:
                    jar.extract_cookies(redirect.response)
                return redirect.status, redirect.location
            if jar is not None:
                jar.extract_cookies(response)
            phase = "body"
            body = await deadline.run(self._read(response), "body", url)
        except FetchError:
            raise
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, phase) from None
        finally:
            if response is not None:
                await response.aclose()

        mime = mime_type(response.headers.get("content-type"))
        kind = content_kind(mime, body)
        page = RawPage(
            url=url,
            final_url=url,
            status_code=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            content_type=mime,
            kind=kind,
            body=body,
            text=None,
            engine="http",
        )
        if kind != "binary":
            page.text, page.charset, page.warnings = decode(
                body, header_charset(response.headers.get("content-type")), html=kind == "html"
            )
        return page

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _too_large(self._max_bytes, f"declares {int(declared):,} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise _too_large(self._max_bytes, "is larger")
            chunks.append(chunk)
        return b"".join(chunks)


def _refused_redirect(exc: FetchError, source: str, hop: str, status: int, location: str) -> FetchError:
    """A redirect the policy refuses is the origin's doing: say so, with the hop ("redirected (302)")."""
    if isinstance(exc, ForbiddenTarget):
        return ForbiddenTarget(f"{source} {hop} to {location}, which is refused: {exc.message}")
    return HTTPStatusError(
        f"{source} {hop} to {location!r}, which is not a valid URL ({exc.message}).",
        status_code=status,
    )


def _too_large(limit: int, what: str) -> TooLarge:
    return TooLarge(
        f"The response {what} than the limit of {limit:,} bytes (BROWSER_SERVICE_MAX_BYTES); "
        "it was not downloaded. Fetch a smaller resource."
    )


def _transport_error(exc: httpx.HTTPError, url: str, phase: Phase) -> FetchError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return TLSError(
                f"TLS with {url} failed ({cause.reason or cause}). The site's certificate or TLS setup "
                "is broken; retrying will not help."
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.DecodingError):
        return ConnectError(f"The response body from {url} was corrupt ({exc}).", phase="body")
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(
            f"Could not connect to {url} ({exc or 'refused'}). The server is down or unreachable; retry later.",
            phase="connect",
        )
    where = "before the response started" if phase == "response" else "while reading the body"
    return ConnectError(
        f"The connection to {url} failed {where} ({type(exc).__name__}: {exc or 'closed'}). "
        "It may be transient; retry shortly.",
        phase=phase,
    )
