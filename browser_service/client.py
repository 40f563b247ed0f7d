"""Python client for a running browser-service: the contract's models in, the same models out.

    from browser_service.client import Client

    with Client("http://127.0.0.1:8000", api_key="…") as service:
        page = service.fetch("https://example.com/", formats=["markdown", "links"])
        print(page.markdown)

``batch`` sends many requests in one ``POST /v1/batch`` and yields each answer (a ``BatchItem``:
its ``index`` in the list and its ``response``) as it completes; failed items are yielded, not
raised, so one failure does not end the batch.

A failed fetch raises the exception class the server raised (``errors.py``: ``NotFound``,
``Blocked``, ``CircuitOpen`` …, all ``FetchError``), rebuilt from the answer's ``ErrorInfo``, with
the whole ``FetchResponse`` on ``exc.response``; ``raise_errors=False`` returns it instead. A stale
copy is a success (``page.stale``, ``page.live_error``). ``AsyncClient`` is the same over asyncio.

Problems with the service itself, not with a fetch, are :class:`ServiceProblem`: unreachable,
a refused API key, an answer that is not the contract's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from browser_service.batch import BatchItem, BatchSummaryLine
from browser_service.contract import (
    ErrorBody,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    Health,
    HostStatus,
    QuarantineDecision,
    QuarantineList,
    SessionCreate,
    SessionDeleted,
    SessionInfo,
)
from browser_service.errors import FetchError, from_info
from browser_service.traces import Trace

M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
#: Time allowed beyond a request's own deadline for the answer to travel.
MARGIN_S = 10.0


class ServiceProblem(Exception):
    """The service could not be reached or did not answer with the contract (not a fetch failure)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _fetch_body(url: str, options: dict[str, Any]) -> tuple[dict[str, Any], float]:
    request = FetchRequest.model_validate({"url": url, **options})  # invalid options fail here, typed
    return request.model_dump(mode="json", exclude_unset=True), request.timeout_ms / 1000 + MARGIN_S


def _extract_body(html: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    return ExtractRequest.model_validate({"html": html, "url": url, **options}).model_dump(
        mode="json", exclude_unset=True
    )


BatchInput = FetchRequest | Mapping[str, Any] | str


def _batch_body(requests: Iterable[BatchInput], concurrency: int | None) -> tuple[dict[str, Any], httpx.Timeout]:
    """The body, validated here as ``fetch`` validates its options; a URL string is ``{"url": …}``."""
    items = [
        r if isinstance(r, FetchRequest) else FetchRequest.model_validate({"url": r} if isinstance(r, str) else r)
        for r in requests
    ]
    body: dict[str, Any] = {"requests": [i.model_dump(mode="json", exclude_unset=True) for i in items]}
    if concurrency is not None:
        body["concurrency"] = concurrency
    # A line arrives at the latest when the slowest running item's deadline ends.
    longest = max((i.timeout_ms for i in items), default=0) / 1000
    return body, httpx.Timeout(30.0, read=longest + MARGIN_S)


class _BatchLines:
    """Checks a batch stream: one item line per input, then the summary — or a ServiceProblem."""

    def __init__(self, answer: httpx.Response, expected: int) -> None:
        self.answer = answer
        self.expected = expected
        self.seen = 0

    def refused(self) -> Exception:
        """The whole batch was refused (its body read): the typed error, or a ServiceProblem."""
        try:
            _page(self.answer, raise_errors=True)
        except (FetchError, ServiceProblem) as exc:
            return exc
        return _problem(self.answer)

    def item(self, raw: str) -> BatchItem | None:
        """The item of a line; None for the summary (the end)."""
        try:
            if raw.startswith('{"summary"'):
                BatchSummaryLine.model_validate_json(raw)
                if self.seen != self.expected:
                    raise self.cut()
                return None
            self.seen += 1
            return BatchItem.model_validate_json(raw)
        except ValidationError:
            raise ServiceProblem(
                f"{self.answer.request.url} sent a line that is not the batch contract: {raw[:200]}"
            ) from None

    def cut(self) -> ServiceProblem:
        return ServiceProblem(
            f"{self.answer.request.url}: the batch stream ended after {self.seen} of {self.expected} answers."
        )


def _page(answer: httpx.Response, raise_errors: bool) -> FetchResponse:
    try:
        page = FetchResponse.model_validate_json(answer.content)
    except ValidationError:
        raise _problem(answer) from None
    if raise_errors and not page.ok and page.error is not None:
        error = from_info(page.error)
        error.response = page
        raise error
    return page


def _model(answer: httpx.Response, model: type[M]) -> M:
    if answer.status_code >= 400:
        raise _problem(answer)
    try:
        return model.model_validate_json(answer.content)
    except ValidationError:
        raise _problem(answer) from None


def _session(answer: httpx.Response, model: type[M]) -> M:
    """A session endpoint's answer; its typed error (``SessionNotFound`` …) raised as the server's class."""
    if answer.status_code >= 400:
        try:
            failure = ErrorBody.model_validate_json(answer.content)
        except ValidationError:
            raise _problem(answer) from None
        raise from_info(failure.error)
    return _model(answer, model)


def _session_body(ttl_s: int | None) -> dict[str, Any]:
    return SessionCreate(ttl_s=ttl_s).model_dump(mode="json", exclude_none=True)


def _problem(answer: httpx.Response) -> ServiceProblem:
    detail = answer.text[:300]
    with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not an object
        detail = str(answer.json().get("detail", detail))
    return ServiceProblem(
        f"{answer.request.url} answered HTTP {answer.status_code}: {detail}", status_code=answer.status_code
    )


def _unreachable(base_url: str, exc: httpx.HTTPError) -> ServiceProblem:
    return ServiceProblem(f"browser-service at {base_url} did not answer ({type(exc).__name__}: {exc}).")


class Client:
    """Synchronous client (httpx)."""

    def __init__(
        self, base_url: str = DEFAULT_URL, *, api_key: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key), transport=transport)

    def fetch(self, url: str, *, raise_errors: bool = True, **options: Any) -> FetchResponse:
        """``POST /v1/fetch``; ``options`` are ``FetchRequest`` fields (``formats``, ``render`` …)."""
        body, timeout = _fetch_body(url, options)
        return _page(self._send("POST", "/v1/fetch", json=body, wait_s=timeout), raise_errors)

    def batch(self, requests: Iterable[BatchInput], *, concurrency: int | None = None) -> Iterator[BatchItem]:
        """``POST /v1/batch``: each item's answer as it completes (``item.index``, ``item.response``).

        Items are ``FetchRequest``s, dicts of its fields or URLs; failed fetches are yielded, not raised.
        """
        body, timeout = _batch_body(requests, concurrency)
        try:
            with self._http.stream("POST", "/v1/batch", json=body, timeout=timeout) as answer:
                lines = _BatchLines(answer, len(body["requests"]))
                if answer.status_code != 200:
                    answer.read()
                    raise lines.refused()
                for raw in answer.iter_lines():
                    if raw.strip():
                        item = lines.item(raw)
                        if item is None:
                            return
                        yield item
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        raise lines.cut()

    def extract(self, html: str, url: str, *, raise_errors: bool = True, **options: Any) -> FetchResponse:
        return _page(self._send("POST", "/v1/extract", json=_extract_body(html, url, options)), raise_errors)

    def health(self) -> Health:
        answer = self._send("GET", "/v1/health")
        if answer.status_code == 503:  # unavailable is still a health report
            return Health.model_validate_json(answer.content)
        return _model(answer, Health)

    def host(self, host: str) -> HostStatus:
        return _model(self._send("GET", f"/v1/hosts/{host}"), HostStatus)

    def quarantine(self, limit: int = 100) -> QuarantineList:
        return _model(self._send("GET", "/v1/quarantine", params={"limit": limit}), QuarantineList)

    def approve(self, item_id: str) -> QuarantineDecision:
        return _model(self._send("POST", f"/v1/quarantine/{item_id}/approve"), QuarantineDecision)

    def reject(self, item_id: str) -> QuarantineDecision:
        return _model(self._send("POST", f"/v1/quarantine/{item_id}/reject"), QuarantineDecision)

    def create_session(self, ttl_s: int | None = None) -> SessionInfo:
        """``POST /v1/sessions``: pass the id as ``session=`` to ``fetch`` to share cookies and storage."""
        return _session(self._send("POST", "/v1/sessions", json=_session_body(ttl_s)), SessionInfo)

    def session(self, session_id: str) -> SessionInfo:
        return _session(self._send("GET", f"/v1/sessions/{session_id}"), SessionInfo)

    def delete_session(self, session_id: str) -> SessionDeleted:
        return _session(self._send("DELETE", f"/v1/sessions/{session_id}"), SessionDeleted)

    def trace(self, trace_id: str) -> Trace:
        """``GET /v1/traces/{trace_id}``: a recent fetch's attempts, phases and spans (``ServiceProblem``
        404 once the service no longer keeps it)."""
        return _model(self._send("GET", f"/v1/traces/{trace_id}"), Trace)

    def tools(self) -> dict[str, Any]:
        answer = self._send("GET", "/v1/tools")
        if answer.status_code >= 400:
            raise _problem(answer)
        result: dict[str, Any] = answer.json()
        return result

    def _send(self, method: str, path: str, *, wait_s: float = 30.0, **kwargs: Any) -> httpx.Response:
        try:
            answer = self._http.request(method, path, timeout=wait_s, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        if answer.status_code == 401:
            raise _problem(answer)
        return answer

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """Asynchronous client (httpx); the same methods, awaited."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key), transport=transport)

    async def fetch(self, url: str, *, raise_errors: bool = True, **options: Any) -> FetchResponse:
        body, timeout = _fetch_body(url, options)
        return _page(await self._send("POST", "/v1/fetch", json=body, wait_s=timeout), raise_errors)

    async def batch(
        self, requests: Iterable[BatchInput], *, concurrency: int | None = None
    ) -> AsyncIterator[BatchItem]:
        """``POST /v1/batch``: each item's answer as it completes; see :meth:`Client.batch`."""
        body, timeout = _batch_body(requests, concurrency)
        try:
            async with self._http.stream("POST", "/v1/batch", json=body, timeout=timeout) as answer:
                lines = _BatchLines(answer, len(body["requests"]))
                if answer.status_code != 200:
                    await answer.aread()
                    raise lines.refused()
                async for raw in answer.aiter_lines():
                    if raw.strip():
                        item = lines.item(raw)
                        if item is None:
                            return
                        yield item
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        raise lines.cut()

    async def extract(self, html: str, url: str, *, raise_errors: bool = True, **options: Any) -> FetchResponse:
        return _page(await self._send("POST", "/v1/extract", json=_extract_body(html, url, options)), raise_errors)

    async def health(self) -> Health:
        answer = await self._send("GET", "/v1/health")
        if answer.status_code == 503:
            return Health.model_validate_json(answer.content)
        return _model(answer, Health)

    async def host(self, host: str) -> HostStatus:
        return _model(await self._send("GET", f"/v1/hosts/{host}"), HostStatus)

    async def quarantine(self, limit: int = 100) -> QuarantineList:
        return _model(await self._send("GET", "/v1/quarantine", params={"limit": limit}), QuarantineList)

    async def approve(self, item_id: str) -> QuarantineDecision:
        return _model(await self._send("POST", f"/v1/quarantine/{item_id}/approve"), QuarantineDecision)

    async def reject(self, item_id: str) -> QuarantineDecision:
        return _model(await self._send("POST", f"/v1/quarantine/{item_id}/reject"), QuarantineDecision)

    async def create_session(self, ttl_s: int | None = None) -> SessionInfo:
        return _session(await self._send("POST", "/v1/sessions", json=_session_body(ttl_s)), SessionInfo)

    async def session(self, session_id: str) -> SessionInfo:
        return _session(await self._send("GET", f"/v1/sessions/{session_id}"), SessionInfo)

    async def delete_session(self, session_id: str) -> SessionDeleted:
        return _session(await self._send("DELETE", f"/v1/sessions/{session_id}"), SessionDeleted)

    async def trace(self, trace_id: str) -> Trace:
        return _model(await self._send("GET", f"/v1/traces/{trace_id}"), Trace)

    async def tools(self) -> dict[str, Any]:
        answer = await self._send("GET", "/v1/tools")
        if answer.status_code >= 400:
            raise _problem(answer)
        result: dict[str, Any] = answer.json()
        return result

    async def _send(self, method: str, path: str, *, wait_s: float = 30.0, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self._http.request(method, path, timeout=wait_s, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        if answer.status_code == 401:
            raise _problem(answer)
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


__all__ = ["AsyncClient", "BatchItem", "Client", "FetchError", "ServiceProblem"]
