"""Batch: many fetches in one request, answered line by line (NDJSON) as they complete.

A batch is a loop over :meth:`Fetcher.fetch` — what this module adds are the rules that make one
safe to offer to agents and to other clients of the same service:

* **One line per input, always.** Items are validated one by one, so an invalid entry is answered
  ``invalid_request`` at its index (naming ``requests.<i>.<field>``) instead of failing the other
  999; an overloaded service answers the typed ``overloaded`` line the Fetcher gives (never a
  dropped item); a bug while serving one item is that item's ``internal_error`` line.
* **Bounded.** At most ``BROWSER_SERVICE_BATCH_MAX`` items, at most ``concurrency`` of them running
  (default: half the browser slots, so a batch leaves room for other clients; never more than the
  slots, so a batch does not fill the pool's wait queue). Items wait for the batch's own turn, not
  in the pool's queue, and each item's ``timeout_ms`` starts when the item starts.
* **Nothing leaked.** Leaving ``async with Batch(...)`` — the stream finished, the client went away,
  the CLI was interrupted — cancels the fetches still running and waits for their clean-up, so
  every browser slot is released before it returns.

The lines (``POST /v1/batch``, ``browser-service fetch -i … -o FILE``), in completion order::

    {"index": 3, "response": {…FetchResponse…}}     one per input; index = position in `requests`
    {"summary": {"total": 4, "ok": 3, "failed": 1, "stale": 0, "by_kind": {"ok": 3, "not_found": 1},
                 "concurrency": 2, "elapsed_ms": 812, "p50_ms": 95, "p95_ms": 340}}     last line
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from browser_service.contract import FetchRequest, FetchResponse
from browser_service.errors import FetchError, InternalError, InvalidRequest
from browser_service.settings import Settings
from browser_service.tools import parameters_schema

if TYPE_CHECKING:  # the client imports this module for the line models: keep the pipeline out of it
    from browser_service.fetcher import Fetcher

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


class BatchRequest(BaseModel):
    """``POST /v1/batch``. Unknown fields are rejected; the items are checked one by one."""

    model_config = ConfigDict(extra="forbid")

    # Validated per item (an invalid one is answered at its index), so the model takes any JSON
    # value; the schema still documents FetchRequest items.
    requests: Annotated[list[Any], WithJsonSchema({"type": "array", "items": parameters_schema(FetchRequest)})] = Field(
        description="FetchRequest objects; at most BROWSER_SERVICE_BATCH_MAX of them."
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=1_000,
        description="Fetches running at once. Default: half the browser slots; more than the slots runs at the slots.",
    )


class BatchItem(BaseModel):
    """One line per input: its position in ``requests`` and its whole answer."""

    index: int
    response: FetchResponse


class BatchSummary(BaseModel):
    total: int = Field(description="Inputs; one item line was sent for each.")
    ok: int
    failed: int
    stale: int = Field(description="Successes served from a stored copy because the live fetch failed.")
    by_kind: dict[str, int] = Field(description="'ok', or the error kind -> count.")
    concurrency: int = Field(description="Fetches that ran at once.")
    elapsed_ms: int
    p50_ms: int | None = Field(description="Median of the items' duration_ms.")
    p95_ms: int | None = Field(description="95th percentile of the items' duration_ms.")


class BatchSummaryLine(BaseModel):
    """The last line of a batch."""

    summary: BatchSummary


BatchLine = BatchItem | BatchSummaryLine


def concurrency_for(asked: int | None, settings: Settings) -> int:
    """The concurrency a batch runs at: as asked (or the default), never above the browser slots."""
    default = settings.batch_concurrency or max(1, settings.pool_size // 2)
    return max(1, min(asked or default, settings.pool_size))


def percentile(values: Sequence[int], share: float) -> int | None:
    """Nearest-rank percentile (``share`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def outcome(response: FetchResponse) -> str:
    """``ok``, or the error kind: the key of ``by_kind``."""
    return "ok" if response.ok or response.error is None else response.error.kind.value


class Batch:
    """A running batch: ``async with Batch(fetcher, request) as batch: async for line in batch.lines()``.

    Raises :class:`InvalidRequest` at construction when the batch has more than ``max_items``
    (default ``BROWSER_SERVICE_BATCH_MAX``; the CLI, the only client of its own Fetcher, lifts it).
    """

    def __init__(self, fetcher: Fetcher, request: BatchRequest, *, max_items: int | None = None) -> None:
        limit = fetcher.settings.batch_max if max_items is None else max_items
        if len(request.requests) > limit:
            raise InvalidRequest(
                f"Invalid request: requests: {len(request.requests)} items; this service takes at most {limit} "
                "per batch (BROWSER_SERVICE_BATCH_MAX). Send them in smaller batches."
            )
        self.fetcher = fetcher
        self.items = request.requests
        self.concurrency = concurrency_for(request.concurrency, fetcher.settings)
        self._results: asyncio.Queue[BatchItem] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._next = 0
        self._started = time.monotonic()

    async def __aenter__(self) -> Batch:
        self._started = time.monotonic()
        for _ in range(min(self.concurrency, len(self.items))):
            self._workers.append(asyncio.ensure_future(self._work()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel what is still running and wait for it to clean up (leases released)."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def lines(self) -> AsyncIterator[BatchLine]:
        """Each input's line as it completes, then the summary."""
        counts: collections.Counter[str] = collections.Counter()
        durations: list[int] = []
        stale = 0
        for _ in range(len(self.items)):
            item = await self._results.get()
            counts[outcome(item.response)] += 1
            stale += item.response.stale
            if item.response.duration_ms is not None:
                durations.append(item.response.duration_ms)
            yield item
        yield BatchSummaryLine(
            summary=BatchSummary(
                total=len(self.items),
                ok=counts["ok"],
                failed=len(self.items) - counts["ok"],
                stale=stale,
                by_kind=dict(counts.most_common()),
                concurrency=self.concurrency,
                elapsed_ms=int((time.monotonic() - self._started) * 1000),
                p50_ms=percentile(durations, 0.5),
                p95_ms=percentile(durations, 0.95),
            )
        )

    async def _work(self) -> None:
        while self._next < len(self.items):
            index = self._next
            self._next += 1
            self._results.put_nowait(BatchItem(index=index, response=await self._answer(index)))

    async def _answer(self, index: int) -> FetchResponse:
        raw = self.items[index]
        url = raw["url"] if isinstance(raw, dict) and isinstance(raw.get("url"), str) else ""
        try:
            request = FetchRequest.model_validate(raw)
            return await self.fetcher.fetch(request)
        except ValidationError as exc:
            return _error(url, InvalidRequest(_describe(index, exc)), uuid.uuid4().hex)
        except Exception as exc:  # Fetcher.fetch does not raise; should it, this item still gets its line
            trace_id = uuid.uuid4().hex
            log.exception("internal error in a batch item", extra={"trace_id": trace_id, "url": url})
            failure = InternalError(f"An internal error occurred ({type(exc).__name__}); trace_id {trace_id}.")
            return _error(url, failure, trace_id)


def _error(url: str, exc: FetchError, trace_id: str) -> FetchResponse:
    return FetchResponse(ok=False, url=url, error=exc.info(), trace_id=trace_id)


def _describe(index: int, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(["requests", str(index), *(str(p) for p in err["loc"])])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling against GET /v1/tools)"
        parts.append(f"{loc}: {msg}")
    return "Invalid request: " + "; ".join(parts) + ". Fix the item and send it again; retrying as is will fail."


#: Characters valid unescaped inside a JSON string that many line splitters (Python's
#: ``str.splitlines``, JavaScript's line terminators) also take as the end of a line; an echoed URL or
#: field name can carry them. Escaped, every NDJSON line is one line to every reader.
_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def ndjson_line(model: BaseModel) -> str:
    """One NDJSON line (with its newline) that no line splitter cuts in two."""
    return model.model_dump_json().translate(_LINE_BREAKS) + "\n"


async def _encoded(batch: Batch) -> AsyncGenerator[bytes, None]:
    async for line in batch.lines():
        yield ndjson_line(line).encode()


class BatchResponse(StreamingResponse):
    """The NDJSON stream of a batch. A client that disconnects stops the batch at once: the
    remaining fetches are cancelled and their browser slots released, whatever the server's
    ASGI version (Starlette only watches for a disconnect before ASGI 2.4, and never closes the
    body iterator)."""

    media_type = NDJSON

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self._lines = _encoded(batch)
        super().__init__(self._lines, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.batch:
            producer = asyncio.ensure_future(self.stream_response(send))
            watcher = asyncio.ensure_future(self.listen_for_disconnect(receive))
            try:
                await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (producer, watcher):
                    task.cancel()
                await asyncio.gather(producer, watcher, return_exceptions=True)
            if producer.done() and not producer.cancelled() and producer.exception() is not None:
                error = producer.exception()
                if not isinstance(error, OSError):  # OSError: the client went away while we wrote
                    raise error  # type: ignore[misc]
        await self._lines.aclose()
