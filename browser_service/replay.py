"""Tapes: what puts a Fetcher's network under a recording — writing one, or serving only from one.

A tape plugs into the three places where a fetch meets the network, and nowhere else, so the
pipeline between them (retries, detection, extraction, quality) runs exactly as it does live:

* the **HTTP engine's transport**: :class:`RecordingTransport` wraps the real (pinned) transport and
  keeps every exchange; :class:`ReplayTransport` answers from ``http.har`` and opens no socket;
* **browser contexts** (``isolation.ContextTape``): every lease gets a fresh single-use context —
  recording, with Playwright's HAR recorder on it; replaying, with ``route_from_har`` and a route in
  front of it that aborts (and notes) anything the recording lacks;
* the **network policy's DNS**: recording notes the checked answers; replaying answers from them.

In replay nothing goes to the network: the HTTP transport has no network backend, every browser
request is answered or aborted by routes, and the egress proxy — Chromium's only way out, which
routes never see for preconnects and WebSockets — refuses every tunnel (:class:`OfflineEgress`).
The policy itself still runs, with the recording's allow list and DNS answers: a replay reproduces
the decisions made when recording (a loopback fixture site that was allowed then replays without
the operator's ``BROWSER_SERVICE_ALLOW``; a redirect refused then is refused again) without trusting
anything new. A request the recording lacks fails ``invalid_request`` naming the URL — the request
is not valid against this recording — and is never retried or fetched live.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Route

from browser_service.egress import Egress, PageGuard
from browser_service.engines.http import PinnedTransport
from browser_service.errors import ForbiddenTarget, InvalidRequest
from browser_service.guard import IPAddress, NetworkPolicy, Resolver
from browser_service.pool import BrowserPool
from browser_service.recording import BROWSER_HAR, HTTP_HAR, MEDIA_TYPES, Recording

#: Response headers that describe the transfer, not the content: the tape keeps decoded bodies.
_TRANSFER_HEADERS = frozenset({"content-encoding", "transfer-encoding"})


def not_recorded(url: str, name: str) -> InvalidRequest:
    return InvalidRequest(
        f"{url} is not in the recording {name!r}: in replay mode nothing goes to the network. If the site now "
        f"asks for it, record it again (browser-service record … --name {name})."
    )


# --- HTTP engine ------------------------------------------------------------------------------


def _response(request: httpx.Request, status: int, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)


def _tape_headers(headers: httpx.Headers, body: bytes) -> list[tuple[str, str]]:
    """Headers as the tape serves them: the body is stored decoded, so its transfer coding goes."""
    encoded = "content-encoding" in headers
    kept = [(k, v) for k, v in headers.multi_items() if k.lower() not in _TRANSFER_HEADERS]
    if encoded or "content-length" not in headers:
        kept = [(k, v) for k, v in kept if k.lower() != "content-length"] + [("content-length", str(len(body)))]
    return kept


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real transport, with every exchange kept as a HAR entry. It answers with the response as
    the replay will serve it (body decoded, transfer headers dropped), so recording and replaying
    feed the pipeline the same bytes."""

    def __init__(self, inner: httpx.AsyncBaseTransport, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self.entries: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        entry: dict[str, Any] = {
            "request": {"method": request.method, "url": str(request.url), "headers": _pairs(request.headers)},
            "response": {"status": 0, "headers": [], "content": {"size": 0, "mimeType": ""}},
        }
        self.entries.append(entry)
        try:
            response = await self._inner.handle_async_request(request)
            try:
                body = await self._read(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            entry["_error"] = {"type": type(exc).__name__, "message": str(exc)}
            raise
        headers = _tape_headers(response.headers, body)
        entry["response"] = {
            "status": response.status_code,
            "statusText": response.reason_phrase,
            "headers": [{"name": k, "value": v} for k, v in headers],
            "content": {"size": len(body), "mimeType": response.headers.get("content-type", ""), "_body": body},
        }
        return _response(request, response.status_code, headers, body)

    async def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decoded; one chunk past the cap is enough to refuse
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_bytes:
                break
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers from ``http.har`` only. The same URL asked again gets its next recorded answer (a
    retry, a page that changed between two requests), then the last one again."""

    def __init__(self, recording: Recording, name: str | None = None) -> None:
        self._recording = recording
        self._name = name or recording.name
        self._entries: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for entry in recording.har(HTTP_HAR):
            self._entries[(entry["request"]["method"], entry["request"]["url"])].append(entry)
        self._served: dict[tuple[str, str], int] = defaultdict(int)
        self.misses: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, str(request.url))
        entries = self._entries.get(key)
        if not entries:
            self.misses.append(str(request.url))
            raise not_recorded(str(request.url), self._name)
        entry = entries[min(self._served[key], len(entries) - 1)]
        self._served[key] += 1
        error = entry.get("_error")
        if error:
            cls = getattr(httpx, str(error["type"]), None)
            if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
                cls = httpx.TransportError
            raise cls(str(error["message"]), request=request)
        response = entry["response"]
        headers = [(h["name"], h["value"]) for h in response["headers"]]
        return _response(request, response["status"], headers, self._recording.body(response["content"]))


def _pairs(headers: httpx.Headers) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers.multi_items()]


# --- browser contexts -------------------------------------------------------------------------


class OfflineEgress(Egress):
    """The egress proxy of a replay: it refuses every tunnel (and counts them)."""

    async def checked(self, host: str, port: int) -> tuple[IPAddress, ...]:
        raise ForbiddenTarget(f"{host}:{port}: replay mode never goes to the network.")


# --- the tapes --------------------------------------------------------------------------------


class RecordTape:
    """Records what a Fetcher's fetches exchange; :meth:`save` writes it into a recording."""

    def __init__(self, *, max_bytes: int, images: bool = False) -> None:
        self.images = images
        self.max_bytes = max_bytes
        self.dns: dict[str, list[str]] = {}
        self.http: RecordingTransport | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="bs-record-")
        self._hars = itertools.count()
        self._resolver: Resolver | None = None

    def http_transport(self, policy: NetworkPolicy) -> httpx.AsyncBaseTransport:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self.http = RecordingTransport(PinnedTransport(policy, limits=limits), self.max_bytes)
        return self.http

    def attach(self, policy: NetworkPolicy, pool: BrowserPool) -> None:
        self._resolver = policy.resolver
        policy.resolver = self._resolve
        pool.tape = self

    async def _resolve(self, host: str, port: int) -> list[str]:
        assert self._resolver is not None
        answers = [str(a) for a in await self._resolver(host, port)]
        self.dns[f"{host}:{port}"] = answers
        return answers

    # isolation.ContextTape
    def context_options(self) -> dict[str, Any]:
        path = Path(self._dir.name) / f"{next(self._hars):04d}.har"
        return {"record_har_path": str(path), "record_har_content": "embed", "record_har_mode": "full"}

    async def prepare(self, context: BrowserContext, guard: PageGuard | None) -> None:
        if not self.images:

            async def skip_media(route: Route) -> None:
                if route.request.resource_type in MEDIA_TYPES:
                    await route.abort("blockedbyclient")
                else:
                    await route.fallback()

            await context.route("**/*", skip_media)

    def browser_entries(self) -> list[dict[str, Any]]:
        """The browser's exchanges, in lease order (each HAR is written when its context closes)."""
        import json

        entries: list[dict[str, Any]] = []
        for path in sorted(Path(self._dir.name).glob("*.har")):
            for entry in json.loads(path.read_text(encoding="utf-8"))["log"]["entries"]:
                if entry["response"].get("status", 0) > 0:  # aborted (media) or failed: nothing to serve
                    entries.append(entry)
        return entries

    def save(self, recording: Recording) -> None:
        http = []
        for entry in self.http.entries if self.http else []:
            content = entry["response"]["content"]
            body = content.pop("_body", b"")
            content["_file"] = recording._store_body(body, content["mimeType"]) if body else None
            if not content["_file"]:
                del content["_file"]
            http.append(entry)
        recording.write_har(HTTP_HAR, http, images=True)
        recording.write_har(BROWSER_HAR, self.browser_entries(), images=self.images)

    def close(self) -> None:
        self._dir.cleanup()


class ReplayTape:
    """Serves a Fetcher's fetches from a recording only."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.metadata = recording.metadata()
        self.http = ReplayTransport(recording)
        self.misses: list[str] = []
        self._recorded = {(e["request"]["method"], e["request"]["url"]) for e in recording.har(BROWSER_HAR)}
        self._har = recording.path / BROWSER_HAR

    def http_transport(self, policy: NetworkPolicy) -> httpx.AsyncBaseTransport:
        return self.http

    def attach(self, policy: NetworkPolicy, pool: BrowserPool) -> None:
        policy.resolver = self._resolve
        pool.egress = OfflineEgress(pool.policy)
        pool.tape = self

    async def _resolve(self, host: str, port: int) -> list[str]:
        answers = self.metadata.dns.get(f"{host}:{port}")
        if answers is None:
            raise not_recorded(f"{host}:{port}", self.recording.name)
        return answers

    # isolation.ContextTape
    def context_options(self) -> dict[str, Any]:
        return {}

    async def prepare(self, context: BrowserContext, guard: PageGuard | None) -> None:
        if self._har.is_file():
            await context.route_from_har(self._har, not_found="abort")

        async def recorded_only(route: Route) -> None:  # runs before route_from_har's (added later)
            request = route.request
            if (request.method, request.url) in self._recorded:
                await route.fallback()
                return
            self.misses.append(request.url)
            if guard is not None and guard.is_main_navigation(request) and guard.refused_navigation is None:
                guard.refused_navigation = not_recorded(request.url, self.recording.name)
            await route.abort("blockedbyclient")

        await context.route("**/*", recorded_only)

    def all_misses(self) -> list[str]:
        return list(dict.fromkeys([*self.http.misses, *self.misses]))

    def close(self) -> None:
        pass


Tape = RecordTape | ReplayTape
