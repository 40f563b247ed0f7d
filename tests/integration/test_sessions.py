"""Named sessions against the fixture site, with real Chromium and real HTTP: sign in once, stay signed
in — across engines, across a restart of the service — and never through the shared cache."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_service.client import AsyncClient
from browser_service.contract import FetchRequest, FetchResponse, SessionInfo
from browser_service.errors import SessionNotFound
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.integration.test_pool import until
from tests.site import FixtureServer

SIGN_IN = [
    {"type": "type", "selector": "#user", "text": "alice"},
    {"type": "press", "selector": "#user", "key": "Enter"},
]


def request(url: str, **fields: Any) -> FetchRequest:
    return FetchRequest.model_validate({"url": url, **fields})


async def fetch(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, FetchResponse]:
    answer = await http.post("/v1/fetch", json=body)
    return answer.status_code, FetchResponse.model_validate(answer.json())


async def test_signed_in_session_survives_a_restart(tmp_path: Path, site: FixtureServer) -> None:
    settings = make_settings(tmp_path, pool_size=1)
    members = site.url("/members")
    async with running(settings) as (http, _):
        created = await http.post("/v1/sessions", json={})
        assert created.status_code == 200
        session = SessionInfo.model_validate(created.json())
        assert session.ttl_s == 3600 and session.requests == 0 and session.cookies == 0
        # Sign in through the form: type the name, press Enter; the site sets an HttpOnly cookie on the
        # redirect, and the welcome page keeps a preference in localStorage.
        status, page = await fetch(http, {"url": site.url("/login-form"), "session": session.id, "actions": SIGN_IN})
        assert status == 200 and page.ok and page.engine == "browser"
        assert page.final_url == site.url("/welcome") and "You are signed in as alice." in (page.markdown or "")
        held = SessionInfo.model_validate((await http.get(f"/v1/sessions/{session.id}")).json())
        assert (held.requests, held.cookies, held.cookie_domains) == (1, 1, ["127.0.0.1"])
        assert held.storage_origins == [site.base_url] and held.expires_at > session.expires_at
    snapshots = list((tmp_path / "cache" / "sessions").iterdir())
    assert [p.name for p in snapshots] == [f"{session.id}.json"]  # written atomically: no temporary left

    async with running(settings) as (http, _):  # a new service on the same cache directory
        status, page = await fetch(http, {"url": members, "session": session.id, "render": "browser"})
        assert status == 200 and page.ok, page.error
        markdown = page.markdown or ""
        assert "Welcome back, alice." in markdown  # the cookie
        assert "Theme: dark-alice" in markdown  # localStorage, read by the page's script
        status, page = await fetch(http, {"url": members, "session": session.id, "render": "http"})
        assert status == 200 and "Welcome back, alice." in (page.markdown or "")
        # Without the session: the sign-in wall, not a cached member page.
        status, page = await fetch(http, {"url": members, "max_age_s": 3600})
        assert status == 502 and page.error is not None and page.error.kind == "login_required"

        deleted = await http.delete(f"/v1/sessions/{session.id}")
        assert deleted.status_code == 200 and deleted.json() == {"id": session.id, "deleted": True}
        assert not (tmp_path / "cache" / "sessions" / f"{session.id}.json").exists()
        status, page = await fetch(http, {"url": members, "session": session.id})
        assert status == 404 and page.error is not None and page.error.kind == "session_not_found"
        assert page.error.message == (
            f"Session {session.id!r} does not exist (never created, or deleted). Create a new session with "
            "POST /v1/sessions (MCP: session_create), sign in again if the task needs it, and use the new id; "
            "retrying with this id will fail."
        )
        assert not page.error.retryable and page.attempts == []
        for method in ("GET", "DELETE"):
            gone = await http.request(method, f"/v1/sessions/{session.id}")
            assert gone.status_code == 404
            assert gone.json()["ok"] is False and gone.json()["error"]["kind"] == "session_not_found"


async def test_cookies_pass_between_engines_and_through_escalation(tmp_path: Path, site: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        session = (await service.sessions.create()).id
        # The HTTP engine takes the cookie from the redirect hop that sets it.
        signed_in = await service.fetch(request(site.url("/login?user=bob"), session=session, render="http"))
        assert signed_in.ok and signed_in.engine == "http" and signed_in.final_url == site.url("/welcome")
        assert "You are signed in as bob." in (signed_in.markdown or "")
        # render=auto: plain HTTP (with the cookie) gets an app shell, the browser (with it too) renders it.
        app = await service.fetch(request(site.url("/members?app=1"), session=session))
        assert app.ok, app.error
        assert [(a.engine, a.outcome) for a in app.attempts] == [("http", "escalated"), ("browser", "ok")]
        assert "Welcome back, bob." in (app.markdown or "")
        # Cookies given with a request join the session (and the site's own stays).
        extra = await service.fetch(
            request(site.url("/echo-headers"), session=session, render="http", cookies={"lang": "en"})
        )
        assert "member=bob; lang=en" in (extra.markdown or "")
        again = await service.fetch(request(site.url("/echo-headers"), session=session, render="browser"))
        cookie_line = next(line for line in (again.markdown or "").splitlines() if "Cookie:" in line)
        assert sorted(cookie_line.split("Cookie: ")[1].split("; ")) == ["lang=en", "member=bob"]
        # The same page without the session is the wall: nothing leaked into the shared engines.
        alone = await service.fetch(request(site.url("/members?app=1")))
        assert alone.error is not None and alone.error.kind == "login_required"


async def test_no_session_keeps_no_cookies(tmp_path: Path, site: FixtureServer) -> None:
    """The HTTP engine's shared client must not carry one request's Set-Cookie into the next."""
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        first = await service.fetch(request(site.url("/set-cookie?name=leak&value=1"), render="http"))
        assert first.ok
        echo = await service.fetch(request(site.url("/echo-headers"), render="http", max_age_s=0))
        assert echo.ok and "leak" not in (echo.markdown or "") and "Cookie" not in (echo.markdown or "")


async def test_half_an_emoji_in_local_storage_does_not_lose_the_session(tmp_path: Path, site: FixtureServer) -> None:
    # The lone surrogate made the session's snapshot unencodable: it was not saved, and the cookie the
    # page set was gone by the next request.
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        session = (await service.sessions.create()).id
        page = site.url("/broken?how=half-emoji-storage")
        stored = await service.fetch(request(page, session=session, render="browser"))
        assert stored.ok and stored.engine == "browser"
        echo = await service.fetch(request(site.url("/echo-headers"), render="http", session=session))
        assert echo.ok and "Cookie: kept=yes" in (echo.markdown or "")


async def test_session_fetches_bypass_the_shared_cache(tmp_path: Path, site: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1)) as service:
        url = site.url("/article.html?cache=session")
        stored = await service.fetch(request(url, render="http"))
        assert stored.ok and stored.source == "live"
        session = (await service.sessions.create()).id
        hits = site.hits["/article.html"]
        mine = await service.fetch(request(url, render="http", session=session, max_age_s=3600))
        assert mine.ok and mine.source == "live" and site.hits["/article.html"] == hits + 1  # not the cache
        members = site.url("/members?cache=session")
        await service.fetch(request(site.url("/login?user=eve"), session=session, render="http"))
        personal = await service.fetch(request(members, session=session, render="http"))
        assert personal.ok and "Welcome back, eve." in (personal.markdown or "")
        public = await service.fetch(request(members, render="http", max_age_s=3600))  # not written either
        assert public.error is not None and public.error.kind == "login_required"


async def test_expired_and_unknown_sessions(tmp_path: Path, site: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=1, session_max_ttl_s=600)) as service:
        session = await service.sessions.create(ttl_s=60)
        assert session.ttl_s == 60
        ok = await service.fetch(request(site.url("/article.html"), session=session.id, render="http"))
        assert ok.ok
        service.sessions.clock = lambda: time.time() + 61  # a minute after its last use
        late = await service.fetch(request(site.url("/article.html"), session=session.id, render="http"))
        assert late.error is not None and late.error.kind == "session_not_found"
        assert late.error.message.startswith(
            f"Session {session.id!r} expired (sessions end ttl_s=60 s after their last use). Create a new session"
        )
        assert not (tmp_path / "cache" / "sessions" / f"{session.id}.json").exists()  # purged
        with pytest.raises(SessionNotFound):
            await service.sessions.info(session.id)
        unknown = await service.fetch(request(site.url("/article.html"), session="x" * 22))
        assert unknown.error is not None and unknown.error.kind == "session_not_found"


async def test_a_sessions_requests_take_turns(tmp_path: Path, site: FixtureServer) -> None:
    async with Fetcher(make_settings(tmp_path, pool_size=2)) as service:
        session = (await service.sessions.create()).id
        hits, articles = site.hits["/slow"], site.hits["/article.html"]
        first = asyncio.create_task(
            service.fetch(request(site.url("/slow?ms=4000"), session=session, render="http", timeout_ms=30_000))
        )
        await until(lambda: site.hits["/slow"] > hits)
        # The session is busy: the second request waits its turn, within its own deadline.
        second = await service.fetch(request(site.url("/article.html"), session=session, timeout_ms=1000))
        assert second.error is not None and second.error.kind == "timeout" and second.error.phase == "queue"
        assert "waiting for the session's previous request to finish" in second.error.message
        assert second.attempts == [] and site.hits["/article.html"] == articles  # it never ran
        assert (await first).ok
        assert (await service.sessions.info(session)).requests == 1


async def test_rest_validation_and_python_client(tmp_path: Path, site: FixtureServer) -> None:
    async with running(make_settings(tmp_path, pool_size=1, session_max_ttl_s=600)) as (http, _):
        too_long = await http.post("/v1/sessions", json={"ttl_s": 601})
        assert too_long.status_code == 422 and too_long.json()["error"]["kind"] == "invalid_request"
        assert "ttl_s: at most 600 s" in too_long.json()["error"]["message"]
        typo = await http.post("/v1/sessions", json={"ttl": 5})
        assert typo.status_code == 422 and "ttl: unknown field" in typo.json()["error"]["message"]
        bad_id = await http.post("/v1/fetch", json={"url": site.url("/"), "session": "../../etc"})
        assert bad_id.status_code == 422 and "session: String should match pattern" in bad_id.json()["error"]["message"]
        no_body = await http.post("/v1/sessions")
        assert no_body.status_code == 200 and no_body.json()["ttl_s"] == 600  # the default, within the bound

        async with AsyncClient(str(http.base_url)) as client:
            session = await client.create_session(ttl_s=120)
            assert session.ttl_s == 120 and (await client.session(session.id)).id == session.id
            page = await client.fetch(site.url("/login?user=zed"), session=session.id, render="http")
            assert "You are signed in as zed." in (page.markdown or "")
            assert (await client.delete_session(session.id)).deleted
            with pytest.raises(SessionNotFound) as gone:
                await client.delete_session(session.id)
            assert gone.value.kind == "session_not_found"
            with pytest.raises(SessionNotFound):
                await client.fetch(site.url("/article.html"), session=session.id)
