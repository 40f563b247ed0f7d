"""The quarantine in Redis, so replicas hold, list and decide items as one.

Items are a :class:`~browser_service.shared.BoundedHash` (``browser-service:quarantine``, id →
the held result as JSON; the oldest dropped beyond ``BROWSER_SERVICE_QUARANTINE_MAX_ITEMS``), so an
item held through replica A is listed, approved or rejected through B, and taking an item is one
atomic step: of two replicas deciding it at once, one gets it. The finding codes accepted for a URL
are a set per URL (``…:quarantine-accepted:<normalised URL>``), read on every assessment — one small
Redis read, like the cache's.

When Redis does not answer, every call raises :class:`~browser_service.shared.SharedUnavailable`:
the Fetcher then answers ``suspect_content`` without a quarantine id (nothing is held), judges
without accepted codes, and the API answers 503 for review calls.
"""

from __future__ import annotations

from typing import Any

from browser_service.contract import QuarantineItem
from browser_service.guard import normalize_url
from browser_service.quarantine import Held
from browser_service.shared import BoundedHash, RedisLink


class RedisQuarantineStore:
    """:class:`~browser_service.quarantine.Quarantine` on Redis."""

    def __init__(self, link: RedisLink, *, max_items: int) -> None:
        self._link = link
        self._items = BoundedHash(link, "quarantine", max_items)

    def _accepted_key(self, url: str) -> str:
        return self._link.key("quarantine-accepted", normalize_url(url))

    async def hold(self, held: Held) -> None:
        await self._items.put(held.item.id, held.model_dump_json())

    async def newest(self, *, limit: int = 100) -> tuple[list[QuarantineItem], int]:
        values, total = await self._items.newest(limit)
        return [Held.model_validate_json(value).item for value in values], total

    async def get(self, item_id: str) -> Held | None:
        value = await self._items.get(item_id)
        return Held.model_validate_json(value) if value is not None else None

    async def take(self, item_id: str) -> Held | None:
        value = await self._items.pop(item_id)
        return Held.model_validate_json(value) if value is not None else None

    async def accept(self, url: str, codes: list[str]) -> list[str]:
        key = self._accepted_key(url)

        async def update(client: Any) -> list[str]:
            async with client.pipeline(transaction=True) as pipe:
                if codes:
                    pipe.sadd(key, *codes)
                pipe.smembers(key)
                answers = await pipe.execute()
            return sorted(_text(code) for code in answers[-1])

        result: list[str] = await self._link.call(update)
        return result

    async def accepted(self, url: str) -> frozenset[str]:
        members: Any = await self._link.call(lambda client: client.smembers(self._accepted_key(url)))
        return frozenset(_text(code) for code in members)

    async def count(self) -> int:
        return await self._items.count()

    async def aclose(self) -> None:
        pass  # the Redis link is the Fetcher's, closed by it


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
