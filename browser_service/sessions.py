"""Named sessions: cookies and localStorage kept between the fetches that name a session, across restarts.

An agent that logs in once should stay logged in for the rest of its task — and after the service
restarts. So a session is state, not a browser: Playwright's *storage state* (``{"cookies": [...],
"origins": [{"origin", "localStorage": [...]}]}``), the one format both engines can read and write.

* **One request at a time per session.** :meth:`SessionStore.use` holds the session's lock for the
  whole fetch (a queued request waits within its own deadline, ``timeout`` in phase ``queue``), so
  two requests never load the same state and overwrite each other's snapshot.
* **Both engines.** The HTTP engine works on a cookie jar made from the state
  (:meth:`LiveSession.cookie_jar`) and gives it back (:meth:`LiveSession.absorb_jar`); the browser
  opens a fresh context with ``storage_state=`` and the context's ``storage_state()`` is taken
  before the lease ends (:meth:`LiveSession.absorb_browser`). A ``render=auto`` escalation therefore
  sees the cookies its HTTP attempt just received.
* **Snapshots on disk.** After every request the state is written to
  ``<cache_dir>/sessions/<id>.json`` (a temporary file, fsynced, then renamed: a crash leaves the old
  snapshot or the new one, never half of one). Expired sessions are deleted when they are next
  touched and whenever a session is created; the number of sessions is bounded.
* **Sliding lifetime.** A session lives ``ttl_s`` after its last use; an unknown, deleted or
  expired id is ``session_not_found``, whose message tells the agent to create a new session.

Embedded, sessions are per process (one lock table, one directory): replicas sharing a directory
would race. With Redis (:class:`RedisSessionStore`, ``BROWSER_SERVICE_REDIS_URL``) the records live in
Redis and a session's requests take turns across replicas too (a Redis lock per session), so a
session created through one replica is used through any.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, ValidationError

from browser_service.contract import SESSION_ID_PATTERN, SessionDeleted, SessionInfo
from browser_service.deadline import Deadline
from browser_service.encoding import utf8_safe
from browser_service.errors import InvalidRequest, Overloaded, SessionNotFound
from browser_service.shared import RedisLink, SharedUnavailable

log = logging.getLogger(__name__)

#: Playwright's storage state: ``{"cookies": [...], "origins": [...]}``.
StorageState = dict[str, Any]

#: A snapshot larger than this keeps its cookies and drops its localStorage (logged).
MAX_STATE_BYTES = 8 * 2**20
#: Bound for writing one snapshot; a slower disk loses this snapshot, not the request.
SAVE_TIMEOUT_S = 2.0


class SessionRecord(BaseModel):
    """One session as stored on disk."""

    id: str
    created_at: float
    ttl_s: int
    expires_at: float
    last_used_at: float | None = None
    requests: int = 0
    state: StorageState = Field(default_factory=lambda: {"cookies": [], "origins": []})

    def info(self) -> SessionInfo:
        cookies = self.state.get("cookies") or []
        return SessionInfo(
            id=self.id,
            created_at=_utc(self.created_at),
            expires_at=_utc(self.expires_at),
            ttl_s=self.ttl_s,
            last_used_at=_utc(self.last_used_at) if self.last_used_at is not None else None,
            requests=self.requests,
            cookies=len(cookies),
            cookie_domains=sorted({str(c.get("domain", "")).lstrip(".") for c in cookies}),
            storage_origins=sorted(
                str(o.get("origin")) for o in self.state.get("origins") or [] if o.get("localStorage")
            ),
        )


class LiveSession:
    """One request's working copy of its session's state: what the engines read and update."""

    def __init__(self, state: StorageState) -> None:
        self.state: StorageState = {
            "cookies": list(state.get("cookies") or []),
            "origins": list(state.get("origins") or []),
        }

    def add_cookies(self, url: str, cookies: dict[str, str]) -> None:
        """Cookies given with a request join the session (host-only, path ``/``), replacing namesakes."""
        host = urlsplit(url).hostname or ""
        kept = [
            c
            for c in self.state["cookies"]
            if not (c.get("domain") == host and c.get("path") == "/" and c.get("name") in cookies)
        ]
        for name, value in cookies.items():
            kept.append(
                {
                    "name": name,
                    "value": value,
                    "domain": host,
                    "path": "/",
                    "expires": -1,
                    "httpOnly": False,
                    "secure": False,
                    "sameSite": "Lax",
                }
            )
        self.state["cookies"] = kept

    def cookie_jar(self) -> httpx.Cookies:
        """The state's cookies as a jar the HTTP engine sends from and stores into."""
        jar = http.cookiejar.CookieJar()
        for cookie in self.state["cookies"]:
            with contextlib.suppress(KeyError, TypeError, ValueError):  # a malformed entry is skipped
                jar.set_cookie(_jar_cookie(cookie))
        return httpx.Cookies(jar)

    def absorb_jar(self, cookies: httpx.Cookies) -> None:
        """Take the jar's cookies (the state's, plus and minus what the responses set) as the state's."""
        cookies.jar.clear_expired_cookies()
        self.state["cookies"] = [_state_cookie(c) for c in cookies.jar]

    def absorb_browser(self, state: StorageState) -> None:
        """Take a browser context's storage state. It holds every origin the context was given or
        visited, so it replaces the whole state. A page can store half an emoji (a lone surrogate)
        in localStorage; unencodable, it made the session's snapshot fail, losing every cookie the
        request received: it becomes U+FFFD."""
        self.state = {
            "cookies": _utf8_safe(list(state.get("cookies") or [])),
            "origins": _utf8_safe(list(state.get("origins") or [])),
        }


def _utf8_safe(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, list):
        return [_utf8_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: _utf8_safe(item) for key, item in value.items()}
    return value


class SessionStore:
    def __init__(
        self,
        directory: Path,
        *,
        default_ttl_s: int,
        max_ttl_s: int,
        max_sessions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self.default_ttl_s = min(default_ttl_s, max_ttl_s)
        self.max_ttl_s = max_ttl_s
        self.max_sessions = max_sessions
        #: Wall-clock time (replaceable in tests, to expire sessions without waiting).
        self.clock = clock
        self._index: dict[str, float] | None = None  # id -> expires_at, read from disk on first use
        self._locks: dict[str, asyncio.Lock] = {}
        self._live: dict[str, LiveSession] = {}
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessions")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def close(self) -> None:
        self._io.shutdown(wait=False)

    # --- the endpoints ---------------------------------------------------------------------------

    async def create(self, ttl_s: int | None = None) -> SessionInfo:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl > self.max_ttl_s:
            raise InvalidRequest(
                f"Invalid request: ttl_s: at most {self.max_ttl_s} s (BROWSER_SERVICE_SESSION_MAX_TTL_S). "
                "Send a smaller ttl_s, or none for the default."
            )
        index = await self._loaded_index()
        now = self.clock()
        for expired in [sid for sid, expires in index.items() if expires <= now]:
            await self._forget(expired)
        if len(index) >= self.max_sessions:
            soonest = min(index.values())
            raise Overloaded(
                f"The service already holds its maximum of {self.max_sessions} sessions "
                "(BROWSER_SERVICE_SESSION_MAX_COUNT). Delete the sessions you no longer need "
                "(DELETE /v1/sessions/{id}, or session_delete), or retry after the soonest expires.",
                retry_after_s=round(max(1.0, soonest - now), 1),
            )
        record = SessionRecord(id=secrets.token_urlsafe(16), created_at=now, ttl_s=ttl, expires_at=now + ttl)
        await self._run(self._write, record)
        index[record.id] = record.expires_at
        return record.info()

    async def info(self, session_id: str) -> SessionInfo:
        return (await self._record(session_id)).info()

    async def delete(self, session_id: str) -> SessionDeleted:
        await self._record(session_id)  # unknown or expired: session_not_found
        await self._forget(session_id)
        return SessionDeleted(id=session_id)

    # --- fetches ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def use(self, session_id: str, deadline: Deadline) -> AsyncIterator[LiveSession]:
        """The session's state for one request, which has the session to itself until it ends; the
        state it leaves is snapshotted (also when the request failed: cookies it received still count)."""
        await self._record(session_id)  # fail fast, before waiting for the lock
        async with self._exclusive(session_id, deadline):
            record = await self._record(session_id)  # deleted or expired while we waited?
            live = LiveSession(record.state)
            self._live[session_id] = live
            try:
                yield live
            finally:
                self._live.pop(session_id, None)
                now = self.clock()
                record.state = live.state
                record.requests += 1
                record.last_used_at = now
                record.expires_at = now + record.ttl_s
                await self._save(record)

    @contextlib.asynccontextmanager
    async def _exclusive(self, session_id: str, deadline: Deadline) -> AsyncIterator[None]:
        """The session to this request alone; a queued one waits within its deadline."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        await deadline.run(lock.acquire(), "queue", "waiting for the session's previous request to finish")
        try:
            yield
        finally:
            lock.release()

    def live(self, session_id: str) -> LiveSession | None:
        """The working state of the request that holds the session now (requests are serialised)."""
        return self._live.get(session_id)

    # --- storage ---------------------------------------------------------------------------------

    async def _record(self, session_id: str) -> SessionRecord:
        index = await self._loaded_index()
        record: SessionRecord | None = None
        if session_id in index and re.fullmatch(SESSION_ID_PATTERN, session_id):  # never a path of its own
            record = await self._run(self._read, session_id)
        if record is None:
            raise _not_found(session_id, "does not exist (never created, or deleted)")
        if record.expires_at <= self.clock():
            await self._forget(session_id)
            raise _not_found(session_id, f"expired (sessions end ttl_s={record.ttl_s} s after their last use)")
        return record

    async def _save(self, record: SessionRecord) -> None:
        index = await self._loaded_index()
        if record.id not in index:
            return  # deleted meanwhile: do not bring it back
        index[record.id] = record.expires_at
        try:
            await asyncio.shield(asyncio.wait_for(self._run(self._write, record), SAVE_TIMEOUT_S))
        except Exception as exc:  # the request's answer stands; the session keeps its previous snapshot
            log.warning("session snapshot failed", extra={"session": record.id, "error": repr(exc)})

    async def _forget(self, session_id: str) -> None:
        index = await self._loaded_index()
        index.pop(session_id, None)
        self._locks.pop(session_id, None)
        await self._run(self._unlink, session_id)

    async def _loaded_index(self) -> dict[str, float]:
        if self._index is None:
            index = await self._run(self._scan)
            if self._index is None:  # another caller may have finished first
                self._index = index
        return self._index

    def _path(self, session_id: str) -> Path:
        return self._directory / f"{session_id}.json"

    def _scan(self) -> dict[str, float]:
        """Every stored session that has not expired; expired and unreadable snapshots are deleted."""
        self._directory.mkdir(parents=True, exist_ok=True)
        now = self.clock()
        index: dict[str, float] = {}
        for path in self._directory.glob("*.json"):
            record = self._read(path.stem)
            if record is None or record.expires_at <= now:
                path.unlink(missing_ok=True)
            else:
                index[record.id] = record.expires_at
        for leftover in self._directory.glob("*.tmp"):  # a write a crash interrupted
            leftover.unlink(missing_ok=True)
        return index

    def _read(self, session_id: str) -> SessionRecord | None:
        try:
            record = SessionRecord.model_validate_json(self._path(session_id).read_bytes())
        except (OSError, ValidationError, ValueError):
            return None
        return record if record.id == session_id else None

    def _write(self, record: SessionRecord) -> None:
        data = _encode(record)
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.id)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def _unlink(self, session_id: str) -> None:
        self._path(session_id).unlink(missing_ok=True)


def _encode(record: SessionRecord) -> bytes:
    data = record.model_dump_json().encode()
    if len(data) > MAX_STATE_BYTES:
        log.warning("session state too large; localStorage dropped", extra={"session": record.id})
        record.state = {"cookies": record.state.get("cookies") or [], "origins": []}
        data = record.model_dump_json().encode()
    return data


class RedisSessionStore(SessionStore):
    """Session records in Redis, shared by every replica, and a session's turns taken across them.

    A record is a string ``browser-service:session:<id>`` (the :class:`SessionRecord` JSON), expiring a
    minute after the session does; a sorted set indexes ids by expiry, for the bound on the number of
    sessions (checked, not enforced atomically: replicas creating at the same instant may pass it by
    one each). A request holds the session's local lock (its queue in this process) and then a Redis
    lock (``SET NX PX``, a random token, released only by its holder; it expires with the request's
    deadline plus 10 s, so a replica that died holding it frees it). Waiting for a lock another
    replica holds polls it (20–200 ms apart) within the request's deadline. When Redis does not
    answer, session requests are refused with ``overloaded`` (retryable): a session's state is only
    in Redis, and working without it would fork the state.
    """

    def __init__(
        self,
        link: RedisLink,
        *,
        default_ttl_s: int,
        max_ttl_s: int,
        max_sessions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            Path("."), default_ttl_s=default_ttl_s, max_ttl_s=max_ttl_s, max_sessions=max_sessions, clock=clock
        )
        self._link = link
        self._index_key = link.key("sessions")

    def _key(self, session_id: str) -> str:
        return self._link.key("session", session_id)

    async def _redis(self, fn: Callable[[Any], Any]) -> Any:
        try:
            return await self._link.call(fn)
        except SharedUnavailable as exc:
            raise Overloaded(
                "The session store (Redis) did not answer, so the session cannot be used right now. Retry shortly.",
                retry_after_s=5,
            ) from exc

    async def create(self, ttl_s: int | None = None) -> SessionInfo:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl > self.max_ttl_s:
            raise InvalidRequest(
                f"Invalid request: ttl_s: at most {self.max_ttl_s} s (BROWSER_SERVICE_SESSION_MAX_TTL_S). "
                "Send a smaller ttl_s, or none for the default."
            )
        now = self.clock()

        async def count(client: Any) -> tuple[int, list[tuple[bytes, float]]]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self._index_key, "-inf", now)
                pipe.zcard(self._index_key)
                pipe.zrange(self._index_key, 0, 0, withscores=True)
                _, held, soonest = await pipe.execute()
            return int(held), soonest

        held, soonest = await self._redis(count)
        if held >= self.max_sessions:
            raise Overloaded(
                f"The service already holds its maximum of {self.max_sessions} sessions "
                "(BROWSER_SERVICE_SESSION_MAX_COUNT). Delete the sessions you no longer need "
                "(DELETE /v1/sessions/{id}, or session_delete), or retry after the soonest expires.",
                retry_after_s=round(max(1.0, (soonest[0][1] if soonest else now) - now), 1),
            )
        record = SessionRecord(id=secrets.token_urlsafe(16), created_at=now, ttl_s=ttl, expires_at=now + ttl)
        await self._redis(lambda client: self._store(client, record, create=True))
        return record.info()

    async def _store(self, client: Any, record: SessionRecord, *, create: bool) -> bool:
        data = _encode(record)
        expire_s = max(1, int(record.expires_at - self.clock()) + 60)
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(self._key(record.id), data, ex=expire_s, xx=not create)
            pipe.zadd(self._index_key, {record.id: record.expires_at}, xx=not create)
            stored, _ = await pipe.execute()
        return bool(stored)

    async def _record(self, session_id: str) -> SessionRecord:
        raw = None
        if re.fullmatch(SESSION_ID_PATTERN, session_id):
            raw = await self._redis(lambda client: client.get(self._key(session_id)))
        record: SessionRecord | None = None
        if raw is not None:
            with contextlib.suppress(ValidationError, ValueError):
                record = SessionRecord.model_validate_json(raw)
        if record is None or record.id != session_id:
            raise _not_found(session_id, "does not exist (never created, or deleted)")
        if record.expires_at <= self.clock():
            await self._forget(session_id)
            raise _not_found(session_id, f"expired (sessions end ttl_s={record.ttl_s} s after their last use)")
        return record

    async def _save(self, record: SessionRecord) -> None:
        try:  # SET XX: a session deleted meanwhile is not brought back
            await asyncio.shield(self._link.call(lambda client: self._store(client, record, create=False)))
        except Exception as exc:  # the request's answer stands; the session keeps its previous snapshot
            log.warning("session snapshot failed", extra={"session": record.id, "error": repr(exc)})

    async def _forget(self, session_id: str) -> None:
        self._locks.pop(session_id, None)

        async def forget(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(session_id))
                pipe.zrem(self._index_key, session_id)
                await pipe.execute()

        await self._redis(forget)

    @contextlib.asynccontextmanager
    async def _exclusive(self, session_id: str, deadline: Deadline) -> AsyncIterator[None]:
        async with super()._exclusive(session_id, deadline):
            key = self._link.key("session-lock", session_id)
            token = secrets.token_hex(16)
            lease_ms = int((deadline.remaining() + 10) * 1000)

            async def take() -> None:
                pause = 0.02
                while not await self._redis(lambda client: client.set(key, token, nx=True, px=lease_ms)):
                    await asyncio.sleep(pause)
                    pause = min(0.2, pause * 2)

            await deadline.run(take(), "queue", "waiting for the session's previous request to finish")
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # else it expires with its lease
                    await asyncio.shield(self._link.call(lambda client: client.eval(_UNLOCK, 1, key, token)))


#: Delete the lock only if this request still holds it.
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _not_found(session_id: str, why: str) -> SessionNotFound:
    return SessionNotFound(
        f"Session {session_id!r} {why}. Create a new session with POST /v1/sessions (MCP: session_create), "
        "sign in again if the task needs it, and use the new id; retrying with this id will fail."
    )


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- cookies between Playwright's format and http.cookiejar ------------------------------------------


def _jar_cookie(cookie: dict[str, Any]) -> http.cookiejar.Cookie:
    domain = str(cookie["domain"])
    if "." not in domain:  # cookiejar's name for a dotless host such as localhost (see _state_cookie)
        domain = f"{domain}.local"
    expires = cookie.get("expires", -1)
    expiry = int(expires) if isinstance(expires, int | float) and expires >= 0 else None
    rest: dict[str, str] = {}
    if cookie.get("httpOnly"):
        rest["HttpOnly"] = ""
    if cookie.get("sameSite"):
        rest["SameSite"] = str(cookie["sameSite"])
    return http.cookiejar.Cookie(
        version=0,
        name=str(cookie["name"]),
        value=str(cookie.get("value", "")),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=domain.startswith("."),  # Playwright: a leading dot marks a Domain= cookie
        domain_initial_dot=domain.startswith("."),
        path=str(cookie.get("path") or "/"),
        path_specified=True,
        secure=bool(cookie.get("secure")),
        expires=expiry,
        discard=expiry is None,
        comment=None,
        comment_url=None,
        rest=rest,
    )


def _state_cookie(cookie: http.cookiejar.Cookie) -> dict[str, Any]:
    http_only = any(cookie.has_nonstandard_attr(name) for name in ("HttpOnly", "httponly", "httpOnly"))
    same_site = next(
        (
            str(cookie.get_nonstandard_attr(name))
            for name in ("SameSite", "samesite")
            if cookie.get_nonstandard_attr(name)
        ),
        "Lax",
    ).capitalize()
    domain = cookie.domain
    if not cookie.domain_specified and domain.endswith(".local") and domain.count(".") == 1:
        domain = domain.removesuffix(".local")  # cookiejar's name for a dotless host such as localhost
    return {
        "name": cookie.name,
        "value": cookie.value or "",
        "domain": domain,
        "path": cookie.path or "/",
        "expires": float(cookie.expires) if cookie.expires is not None else -1,
        "httpOnly": http_only,
        "secure": bool(cookie.secure),
        "sameSite": same_site if same_site in ("Strict", "Lax", "None") else "Lax",
    }
