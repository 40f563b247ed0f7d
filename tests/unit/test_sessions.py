"""The session store and the cookie conversions, without a browser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from browser_service.deadline import Deadline
from browser_service.errors import InvalidRequest, Overloaded, SessionNotFound
from browser_service.sessions import LiveSession, SessionStore


def store(tmp_path: Path, **overrides: int) -> SessionStore:
    limits = {"default_ttl_s": 3600, "max_ttl_s": 7200, "max_sessions": 3} | overrides
    return SessionStore(tmp_path / "sessions", **limits)


def test_cookies_round_trip_through_the_http_engines_jar() -> None:
    state = {
        "cookies": [
            {
                "name": "member",
                "value": "alice",
                "domain": "127.0.0.1",
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": False,
                "sameSite": "Strict",
            },
            {
                "name": "wide",
                "value": "1",
                "domain": ".example.com",
                "path": "/docs",
                "expires": time.time() + 3600,
                "httpOnly": False,
                "secure": True,
                "sameSite": "None",
            },
        ],
        "origins": [{"origin": "http://127.0.0.1:1", "localStorage": [{"name": "k", "value": "v"}]}],
    }
    live = LiveSession(state)
    jar = live.cookie_jar()
    request = httpx.Request("GET", "http://127.0.0.1:8000/page")
    jar.set_cookie_header(request)
    assert request.headers["Cookie"] == "member=alice"  # not the example.com one
    docs = httpx.Request("GET", "https://www.example.com/docs/a")
    jar.set_cookie_header(docs)
    assert docs.headers["Cookie"] == "wide=1"
    # A response replaces one cookie and expires nothing else; the state takes the jar's cookies.
    answer = httpx.Response(200, headers={"Set-Cookie": "member=bob; Path=/; HttpOnly"}, request=request)
    jar.extract_cookies(answer)
    live.absorb_jar(jar)
    cookies = {c["name"]: c for c in live.state["cookies"]}
    assert cookies["member"]["value"] == "bob" and cookies["member"]["httpOnly"] is True
    assert cookies["wide"] | {"expires": 0} == state["cookies"][1] | {"expires": 0}
    assert live.state["origins"] == state["origins"]  # the HTTP engine does not touch localStorage


def test_request_cookies_join_the_session() -> None:
    live = LiveSession({"cookies": [], "origins": []})
    live.add_cookies("http://shop.example/cart", {"lang": "en"})
    live.add_cookies("http://shop.example/", {"lang": "de"})
    assert [(c["name"], c["value"], c["domain"]) for c in live.state["cookies"]] == [("lang", "de", "shop.example")]


async def test_create_use_and_delete(tmp_path: Path) -> None:
    sessions = store(tmp_path)
    info = await sessions.create(ttl_s=100)
    assert info.ttl_s == 100 and len(info.id) == 22
    async with sessions.use(info.id, Deadline(5)) as live:
        live.add_cookies("http://a.example/", {"k": "v"})
        assert sessions.live(info.id) is live
    assert sessions.live(info.id) is None
    stored = json.loads((tmp_path / "sessions" / f"{info.id}.json").read_text())
    assert stored["requests"] == 1 and stored["state"]["cookies"][0]["name"] == "k"
    # a new store on the same directory (a restart) finds it
    again = store(tmp_path)
    assert (await again.info(info.id)).cookies == 1
    await again.delete(info.id)
    with pytest.raises(SessionNotFound):
        await again.info(info.id)
    sessions.close()
    again.close()


async def test_limits_expiry_and_damaged_snapshots(tmp_path: Path) -> None:
    sessions = store(tmp_path)
    with pytest.raises(InvalidRequest, match="ttl_s: at most 7200 s"):
        await sessions.create(ttl_s=7201)
    first = await sessions.create(ttl_s=10)
    await sessions.create()
    await sessions.create()
    with pytest.raises(Overloaded) as full:
        await sessions.create()
    assert full.value.retry_after_s is not None and 9 <= full.value.retry_after_s <= 10  # the first one expires
    now = time.time()
    sessions.clock = lambda: now + 11  # the first one expired: its place is free again
    await sessions.create()
    assert not (tmp_path / "sessions" / f"{first.id}.json").exists()
    sessions.close()
    # A damaged snapshot and a write a crash interrupted are cleared when the next store starts.
    (tmp_path / "sessions" / "AAAAAAAAAAAAAAAAAAAAAA.json").write_text("{not json")
    (tmp_path / "sessions" / "BBBBBBBBBBBBBBBBBBBBBB.123.tmp").write_text("{}")
    restarted = store(tmp_path)
    restarted.clock = sessions.clock
    with pytest.raises(SessionNotFound):
        await restarted.info("AAAAAAAAAAAAAAAAAAAAAA")
    assert sorted(p.suffix for p in (tmp_path / "sessions").iterdir()) == [".json"] * 3
    restarted.close()


def test_a_localhost_cookie_is_sent_back_to_localhost() -> None:
    """cookiejar names a dotless host ``localhost.local``; the state says ``localhost`` (as Playwright)."""
    jar = httpx.Cookies()
    request = httpx.Request("GET", "http://localhost:8765/login")
    jar.extract_cookies(httpx.Response(302, headers={"Set-Cookie": "member=alice; Path=/"}, request=request))
    live = LiveSession({"cookies": [], "origins": []})
    live.absorb_jar(jar)
    assert [(c["name"], c["domain"]) for c in live.state["cookies"]] == [("member", "localhost")]
    members = httpx.Request("GET", "http://localhost:8765/members")
    live.cookie_jar().set_cookie_header(members)
    assert members.headers["Cookie"] == "member=alice"
