"""The fast path: a plain HTTP GET with httpx.

Redirects are followed here, hop by hop, so the network policy checks every hop and the hop count
is ours to bound. The body is streamed with a size cap (checked on the decompressed bytes, so a
gzip bomb stops at the cap too) and every await is bounded by the request's deadline.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import urljoin

import httpx

from browser_service.contract import Phase
from browser_service.deadline import Deadline
from browser_service.encoding import decode
from browser_service.engines.base import RawPage, content_kind, header_charset, mime_type
from browser_service.errors import ConnectError, FetchError, HTTPStatusError, TLSError, TooLarge
from browser_service.guard import NetworkPolicy

_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class HttpEngine:
    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        user_agent: str,
        max_bytes: int,
        max_redirects: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept": _ACCEPT, "Accept-Language": "en-US,en;q=0.9"},
            timeout=None,  # every await is bounded by the request's Deadline instead
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
            trust_env=False,  # never route through a proxy from the environment by surprise
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
    ) -> RawPage:
        redirects: list[str] = []
        current = url
        while True:
            target = await self._policy.check(current, deadline)
            page_or_location = await self._get(target.url, deadline, headers or {}, cookies or {})
            if isinstance(page_or_location, RawPage):
                page_or_location.url = url
                page_or_location.redirects = redirects
                return page_or_location
            status, location = page_or_location
            redirects.append(target.url)
            if len(redirects) > self._max_redirects:
                raise HTTPStatusError(
                    f"More than {self._max_redirects} redirects starting at {url} (last: {status} to "
                    f"{location}). The site is in a redirect loop or needs cookies this request lacks.",
                    status_code=status,
                )
            current = urljoin(target.url, location)

    async def _get(
        self,
        url: str,
        deadline: Deadline,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
    ) -> RawPage | tuple[int, str]:
        request_headers = dict(headers)
        if cookies:
            request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        request = self._client.build_request("GET", url, headers=request_headers)
        phase: Phase = "response"
        response: httpx.Response | None = None
        try:
            response = await deadline.run(self._client.send(request, stream=True), "response", url)
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                return response.status_code, location
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
            f"Could not connect to {url} ({exc or 'refused'}). The server is down or unreachable; "
            "retry later.",
            phase="connect",
        )
    where = "before the response started" if phase == "response" else "while reading the body"
    return ConnectError(
        f"The connection to {url} failed {where} ({type(exc).__name__}: {exc or 'closed'}). "
        "It may be transient; retry shortly.",
        phase=phase,
    )
