"""Quarantine: suspect results kept for review, never cached as good until someone approves them.

A result lands here when it passed transport and detection but ``quality.assess`` found it wrong.
An operator (or an agent) lists them, looks at the findings and the excerpt, and decides:

* **approve** — the stored page becomes the cached good copy, against which the next fetch is
  judged (so ``shrunk`` and ``drift`` are settled and still catch the page's next change), and the
  page's own finding codes (``thin``, ``block_markers``, ``lost_text``) are accepted for that URL
  from then on (a page that really is short stops being quarantined);
* **reject** — the item is dropped; the URL's last good copy stays the baseline.

Items live next to the cache (diskcache in ``<cache_dir>/quarantine``), so they survive a restart;
with Redis, they live there for all replicas (``quarantine_shared.py``), so an item held through
one replica is reviewed through any. Either store is bounded (oldest items go first) so a
misbehaving site cannot fill the disk or Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import diskcache
from pydantic import BaseModel

from browser_service.cache import CacheEntry, open_disk
from browser_service.contract import QuarantineItem
from browser_service.guard import normalize_url

#: Items kept at most; the oldest are dropped beyond it.
MAX_ITEMS = 1_000
EXCERPT_CHARS = 500


class Held(BaseModel):
    """An item and what approval needs: the cache key and the entry to store."""

    item: QuarantineItem
    key: str
    entry: CacheEntry
    codes: list[str]


class Quarantine(Protocol):
    """Where held results live: on this replica's disk (:class:`QuarantineStore`), or in Redis for
    all replicas (``quarantine_shared.RedisQuarantineStore``)."""

    async def hold(self, held: Held) -> None:
        """Keep an item (a new one, or one put back after a decision that could not complete)."""

    async def newest(self, *, limit: int = 100) -> tuple[list[QuarantineItem], int]: ...

    async def get(self, item_id: str) -> Held | None: ...

    async def take(self, item_id: str) -> Held | None: ...

    async def accept(self, url: str, codes: list[str]) -> list[str]: ...

    async def accepted(self, url: str) -> frozenset[str]: ...

    async def count(self) -> int: ...

    async def aclose(self) -> None: ...


def new_item(
    *, key: str, entry: CacheEntry, text: str, findings: list[str], codes: list[str], baseline_chars: int | None
) -> Held:
    """A new item for a result that looked wrong, with what approving it needs."""
    item = QuarantineItem(
        id=uuid.uuid4().hex[:16],
        url=entry.url,
        final_url=entry.final_url,
        engine=entry.engine,
        status_code=entry.status_code,
        title=entry.title,
        quarantined_at=datetime.fromtimestamp(time.time(), UTC),
        findings=findings,
        text_chars=len(text),
        baseline_chars=baseline_chars,
        excerpt=text[:EXCERPT_CHARS],
    )
    return Held(item=item, key=key, entry=entry, codes=codes)


class QuarantineStore:
    """The quarantine on this replica's disk (diskcache, next to the cache)."""

    def __init__(self, directory: Path, *, max_items: int = MAX_ITEMS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # diskcache.Index keeps insertion order: the oldest item is the first to drop.
        self._items = open_disk(diskcache.Index, directory / "items")
        self._accepted = open_disk(diskcache.Index, directory / "accepted")
        self._max_items = max_items
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quarantine")
        # Every fetch asks for its URL's accepted codes, and approvals are rare: a mirror in memory
        # (loaded once, updated by accept) keeps a disk read off every fetch's path.
        self._accepted_mirror: dict[str, frozenset[str]] | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def hold(self, held: Held) -> None:
        await self._run(self._add, held.item.id, held.model_dump_json())

    def _add(self, item_id: str, payload: str) -> None:
        self._items[item_id] = payload
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    async def newest(self, *, limit: int = 100) -> tuple[list[QuarantineItem], int]:
        """The newest ``limit`` items first, and how many there are."""

        def read() -> tuple[list[QuarantineItem], int]:
            ids = list(reversed(self._items))
            items = []
            for item_id in ids[:limit]:
                payload = self._items.get(item_id)
                if payload is not None:
                    items.append(Held.model_validate_json(payload).item)
            return items, len(ids)

        result: tuple[list[QuarantineItem], int] = await self._run(read)
        return result

    async def get(self, item_id: str) -> Held | None:
        payload = await self._run(self._items.get, item_id)
        return Held.model_validate_json(payload) if payload is not None else None

    async def take(self, item_id: str) -> Held | None:
        """Remove and return an item (approval and rejection both end its stay)."""
        payload = await self._run(self._items.pop, item_id, None)
        return Held.model_validate_json(payload) if payload is not None else None

    async def accept(self, url: str, codes: list[str]) -> list[str]:
        """Stop holding ``codes`` against ``url``; the full accepted set is returned."""

        def update() -> list[str]:
            key = normalize_url(url)
            merged = sorted(set(self._accepted.get(key, [])) | set(codes))
            self._accepted[key] = merged
            if self._accepted_mirror is not None:
                self._accepted_mirror[key] = frozenset(merged)
            return merged

        result: list[str] = await self._run(update)
        return result

    async def accepted(self, url: str) -> frozenset[str]:
        mirror = self._accepted_mirror
        if mirror is None:
            # Loaded on the store's one I/O thread, like accept(): the two never interleave.
            def load() -> dict[str, frozenset[str]]:
                if self._accepted_mirror is None:
                    self._accepted_mirror = {key: frozenset(codes) for key, codes in self._accepted.items()}
                return self._accepted_mirror

            mirror = await self._run(load)
        return mirror.get(normalize_url(url), frozenset())

    async def count(self) -> int:
        result: int = await self._run(len, self._items)
        return result

    async def aclose(self) -> None:
        def close() -> None:
            self._items.cache.close()
            self._accepted.cache.close()

        await self._run(close)
        close()  # diskcache's connections are per thread: this thread's (opened by the constructor) too
        self._io.shutdown(wait=False)
