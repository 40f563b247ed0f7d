"""The page cache: good results only, keyed by everything that changes the output.

An entry keeps the raw page (the HTML or text as fetched or rendered), the extraction made from it
and its metadata (fetched_at, status, ETag, Last-Modified). It serves three purposes:

* **freshness** — a request with ``max_age_s`` accepts an entry at most that old (``source: cache``);
  an older entry with an ETag or Last-Modified is revalidated with a conditional GET first;
* **paging** — ``start_index > 0`` reads the stored copy, so the pages of one document come from the
  same fetch and cost no refetch;
* **graceful degradation** — when the live fetch fails, an older copy is served flagged ``stale``
  with the live error attached (``Fetcher``).

The key is the normalised URL plus every option that changes the raw page or its extraction:
render mode, waits, page actions, headers, cookies, ``main_content``, selectors. ``formats``, ``max_chars`` and
``start_index`` only choose and slice the output, so they are not in it. Blocked, error, empty or
suspect pages never reach the store: only a finished, successful answer is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import diskcache
import diskcache.core
from pydantic import BaseModel, Field

from browser_service.contract import CacheHealth, Engine, FetchRequest
from browser_service.guard import normalize_url
from browser_service.shared import RedisLink, redact
from extractors import Extraction

log = logging.getLogger(__name__)
T = TypeVar("T")


class CacheEntry(BaseModel):
    url: str
    final_url: str
    fetched_at: float = Field(description="Unix time of the live fetch (or of its last revalidation).")
    status_code: int
    content_type: str
    engine: Engine
    is_html: bool
    body: str = Field(description="The page as fetched or rendered (HTML or text).")
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    extraction: Extraction | None = Field(None, description="The extraction made from body, if HTML.")
    extracted: list[str] = Field(default_factory=list, description="Which formats `extraction` holds.")

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)


def cache_key(request: FetchRequest) -> str:
    """Everything that changes the stored page or its extraction; nothing that only slices it."""
    parts: dict[str, Any] = {
        "url": normalize_url(str(request.url)),
        "render": "browser" if request.render == "auto" and request.needs_browser() else request.render,
        "main_content": request.main_content,
        "wait_for": request.wait_for,
        "wait_ms": request.wait_ms,
        "wait_until": request.wait_until,
        "headers": sorted((k.lower(), v) for k, v in request.headers.items()),
        "cookies": sorted(request.cookies.items()),
        "selectors": {k: v.model_dump() for k, v in sorted(request.selector_specs().items())},
    }
    if request.actions:  # the steps change the page read (only added when present: older keys stay valid)
        parts["actions"] = [action.model_dump() for action in request.actions]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class CacheStore(Protocol):
    """Where entries live. ``DiskCacheStore`` embedded; a Redis store shares them between replicas."""

    async def get(self, key: str) -> CacheEntry | None: ...

    async def put(self, key: str, entry: CacheEntry) -> None: ...

    def health(self) -> CacheHealth: ...

    async def aclose(self) -> None: ...


def open_disk(factory: Callable[[str], T], directory: Path) -> T:
    """diskcache's ``factory`` (a Cache, an Index) on ``directory``. A database that is not one any
    more (a crash or a full disk mid-write) is moved aside as ``cache.db.corrupt-<unix time>`` and a
    fresh one started: the service then starts with that store empty, instead of not at all."""
    try:
        return factory(str(directory))
    except sqlite3.DatabaseError as exc:
        stamp = int(time.time())
        for suffix in ("", "-wal", "-shm"):
            db = directory / f"{diskcache.core.DBNAME}{suffix}"
            if db.exists():
                db.rename(db.with_name(f"{db.name}.corrupt-{stamp}"))
        log.error(
            "store database unreadable; moved aside, starting empty",
            extra={"directory": str(directory), "error": repr(exc), "moved_to": f"*.corrupt-{stamp}"},
        )
        return factory(str(directory))


class DiskCacheStore:
    """diskcache on local disk: bounded, least-recently-used entries evicted first.

    diskcache is synchronous (SQLite plus files), so every call runs on a one-thread executor: the
    event loop never waits on the disk, and SQLite sees one writer at a time.
    """

    def __init__(self, directory: Path, *, size_limit_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        # cull_limit 2: diskcache evicts that many entries per write once over the limit (not "until
        # under it"), so a small number keeps eviction gradual instead of dropping ten pages at once.
        self._cache = open_disk(
            lambda path: diskcache.Cache(
                path, size_limit=size_limit_bytes, eviction_policy="least-recently-used", cull_limit=2
            ),
            directory,
        )
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def get(self, key: str) -> CacheEntry | None:
        raw = await self._run(self._cache.get, key)
        if raw is None:
            return None
        try:
            return CacheEntry.model_validate_json(raw)
        except ValueError:  # written by an incompatible version: a miss, not a failure
            return None

    async def put(self, key: str, entry: CacheEntry) -> None:
        await self._run(self._cache.set, key, entry.model_dump_json())

    def health(self) -> CacheHealth:
        return CacheHealth(
            backend="disk", entries=len(self._cache), size_bytes=self._cache.volume(), location=str(self._directory)
        )

    async def aclose(self) -> None:
        # diskcache keeps one SQLite connection per thread: the I/O thread's, and the one opened in
        # this thread by the constructor and health(). Both must be closed or their files stay open.
        await self._run(self._cache.close)
        self._cache.close()
        self._io.shutdown(wait=False)


class RedisCacheStore:
    """Entries in Redis, shared by every replica: a page cached through one is a hit through all.

    One string per entry (the ``CacheEntry`` as JSON, the same model as on disk), namespaced
    ``browser-service:cache:<key>``, expiring ``ttl_s`` after it was written — the oldest copy the
    service would still serve (``BROWSER_SERVICE_STALE_MAX_AGE_S``), so Redis drops what is no longer
    of use. The size bound is Redis's own: give it ``maxmemory`` with ``maxmemory-policy allkeys-lru``
    (least recently used entries evicted, as on disk). Every call is bounded by the link; a failing
    Redis raises :class:`~browser_service.shared.SharedUnavailable`, which the Fetcher treats as a
    miss (reads) or a lost write — never a failed fetch.
    """

    def __init__(self, link: RedisLink, *, ttl_s: int) -> None:
        self._link = link
        self._ttl_s = max(1, ttl_s)

    async def get(self, key: str) -> CacheEntry | None:
        raw = await self._link.call(lambda client: client.get(self._link.key("cache", key)))
        if raw is None:
            return None
        try:
            return CacheEntry.model_validate_json(raw)
        except ValueError:  # written by an incompatible version: a miss, not a failure
            return None

    async def put(self, key: str, entry: CacheEntry) -> None:
        data = entry.model_dump_json()
        await self._link.call(lambda client: client.set(self._link.key("cache", key), data, ex=self._ttl_s))

    def health(self) -> CacheHealth:
        return CacheHealth(backend="redis", location=redact(self._link.url))

    async def aclose(self) -> None:
        """Nothing of its own to close: the link is the Fetcher's."""
