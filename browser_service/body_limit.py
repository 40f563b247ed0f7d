"""The request body limit (``BROWSER_SERVICE_MAX_BODY_BYTES``): pure ASGI, in front of every route.

A body is refused with HTTP 413 and a ``FetchResponse`` (``invalid_request``, naming the limit and
its setting) — at once when ``Content-Length`` declares too much, otherwise as soon as the bytes
actually received pass the limit (a chunked body, or a ``Content-Length`` that lies), so no route
ever buffers more than the limit whatever it does with the body. It sits outside the routes, so
``/v1/fetch``, ``/v1/extract``, ``/mcp`` and any route added later are covered alike.

Once the limit is passed, reading the body raises :class:`BodyTooLarge`; whatever the route then
answers is dropped and replaced by the 413 (a route may turn a read error into a 400 of its own).
Before the 413 goes out, the rest of the body is read and thrown away (never kept), up to
:data:`DISCARD_FACTOR` times the limit: a client that sends its whole body before reading the answer
(most do) would otherwise see a connection reset instead of the 413. A body declared larger than
that, or a client that waits for ``100 Continue``, is answered without reading it.
"""

from __future__ import annotations

import contextlib
import uuid

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from browser_service.contract import FetchResponse
from browser_service.errors import InvalidRequest

#: After an early refusal, up to this many times the limit is read and discarded (see above).
DISCARD_FACTOR = 4


class BodyTooLarge(Exception):
    """Raised from ``receive`` once the body passes the limit."""


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 and n % 2**16 == 0 else f"{n:,} bytes"


def refusal(limit: int, declared: int | None = None) -> FetchResponse:
    said = f" (it declares {declared:,} bytes)" if declared is not None else ""
    error = InvalidRequest(
        f"The request body is larger than the limit of {limit:,} bytes ({_size(limit)}, "
        f"BROWSER_SERVICE_MAX_BODY_BYTES){said}. Send less — for /v1/extract, only the part of the "
        "page you need; resending it as is will fail. An operator can raise the limit."
    )
    return FetchResponse(ok=False, url="", error=error.info(), trace_id=uuid.uuid4().hex)


class LimitBody:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        response = JSONResponse(refusal(self.max_bytes, declared).model_dump(mode="json"), status_code=413)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length.strip().isdigit() and int(length) > self.max_bytes:
            declared = int(length)
            if declared <= DISCARD_FACTOR * self.max_bytes and headers.get("expect", "").lower() != "100-continue":
                await _discard(receive, declared)
            await self._refuse(scope, receive, send, declared)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the route's own answer to the failed read; the 413 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _discard(receive, (DISCARD_FACTOR - 1) * self.max_bytes)
            await self._refuse(scope, receive, send, None)


async def _discard(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a refused body (so the client sees the answer), up to ``budget`` bytes."""
    with contextlib.suppress(Exception):
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return
