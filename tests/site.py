"""The fixture site: a real HTTP server on 127.0.0.1 with hand-written behaviour pages.

Each route behaves like one kind of real site (a static article, a page that renders after 2 s, an
SPA shell, an origin that resets the connection, …) and the tests assert the exact outcome the
service gives for it. Static pages live in ``fixtures/pages/``; routes that need behaviour (delays,
resets, cookies, encodings) are written here. It runs in its own threads, independent of the event
loop under test, and counts hits per path so tests can see what reached the origin.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import gzip
import hashlib
import html
import json
import mimetypes
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from browser_service.engines.settle import HOOK

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "pages"
TLS = PAGES.parent / "tls"

#: A 1×1 PNG and a minimal PDF: real magic bytes, so sniffing and content types are exercised.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

LONG_PARAGRAPHS = 400  # the /long article: ~400 paragraphs, ~100 k characters


def long_article() -> str:
    paragraphs = "\n".join(
        f"<p>Paragraph {i} of the long article. It tells part {i} of the story in a few sentences. "
        f"Each sentence ends cleanly. The reader can page through all of it without losing a word.</p>"
        for i in range(1, LONG_PARAGRAPHS + 1)
    )
    return (
        "<!doctype html><html lang='en'><head><title>A Very Long Article</title></head><body>"
        "<nav><a href='/'>Home</a></nav><main><article><h1>A Very Long Article</h1>"
        f"{paragraphs}</article></main><footer>Footer text</footer></body></html>"
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FixtureServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm holds
        # the body until the client's delayed ACK (~40 ms on Linux) — a stall no real server has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # --- helpers -----------------------------------------------------------------------------

    def send(
        self,
        status: int,
        body: bytes | str,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def page(self, name: str, status: int = 200) -> None:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        textual = kind.startswith(("text/", "application/j"))
        # A page that calls the settle wait itself finds it under this process's name for it.
        body = (PAGES / name).read_bytes().replace(b"__SETTLE_HOOK__", HOOK.encode())
        self.send(status, body, f"{kind}; charset=utf-8" if textual else kind)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing origin or middlebox does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # --- routing -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.count(parts.path)
        route = ROUTES.get(parts.path) or (_blocked_page if parts.path.startswith("/blocked/") else None)
        if route is None and (PAGES / parts.path.lstrip("/")).is_file() and ".." not in parts.path:
            return self.page(parts.path.lstrip("/"))
        if route is None:
            return self.page("404.html", 404)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: fine
            route(self)

    do_HEAD = do_GET


def _js_article(h: Handler) -> None:
    delay = int(h.query.get("delay", "300"))
    h.send(200, (PAGES / "js-article.html").read_text().replace("__DELAY__", str(delay)))


#: The article a lazily loaded route renders (fixtures/pages/lazy-route.html).
LAZY_ARTICLE = (
    "<article><h1>Reading the Sky</h1>"
    "<p>A halo round the moon comes from ice crystals in thin, high cloud, often a day ahead of rain.</p>"
    "<p>Mackerel skies and mares' tails, the sailors' saying goes, make tall ships carry low sails.</p>"
    "<p>Rendered by a chunk loaded with import().</p></article>"
)


def _lazy_chunk(h: Handler) -> None:
    """A module chunk, answered after ``?ms=``. With ``?then=N`` it shows a placeholder and loads
    the article from a second chunk (itself answered after N ms), as a route that splits again."""
    h.server.stop.wait(int(h.query.get("ms", "300")) / 1000)
    then = h.query.get("then", "")
    if then:
        body = (
            "export async function render(root) {\n"
            "  root.innerHTML = '<p class=\"loading\">Loading the article…</p>';\n"
            f"  const part = await import('/lazy-chunk.js?ms={int(then)}');\n"
            "  part.render(root);\n}\n"
        )
    else:
        body = f"export function render(root) {{ root.innerHTML = {LAZY_ARTICLE!r}; }}\n"
    h.send(200, body, "text/javascript; charset=utf-8")


def _needs_cookie(h: Handler) -> None:
    if "session=letmein" in (h.headers.get("Cookie") or ""):
        h.page("members.html")
    else:
        h.send(403, "<html><body><h1>Forbidden</h1><p>Members only.</p></body></html>")


def _redirect(h: Handler) -> None:
    hops = int(h.query.get("n", "3"))
    target = "/article.html" if hops <= 1 else f"/redirect?n={hops - 1}"
    h.send(302, "", headers={"Location": target})


def _redirect_loop(h: Handler) -> None:
    h.send(302, "", headers={"Location": "/redirect-loop"})


def _slow(h: Handler) -> None:
    ms = int(h.query.get("ms", "5000"))
    h.server.stop.wait(ms / 1000)
    h.page("article.html")


def _hold(h: Handler) -> None:
    """Answers the article once the test opens the gate ``?id=`` (``FixtureServer.release``): a
    request that stays in flight exactly as long as the test needs, without timing."""
    name = h.query.get("id", "")
    h.server.count(f"/hold?id={name}")  # arrivals per gate: tests wait on this
    h.server.gate(name).wait(timeout=120)
    h.page("article.html")


#: The article /ws-article sends (fixtures/pages/live-render.html).
LIVE_ARTICLE = {
    "title": "Harbour Live",
    "paragraphs": [
        "The harbour master posts every arrival and departure here as the pilots report them.",
        "Berth four is closed for dredging until the spring tides have passed.",
        "Sent over a WebSocket.",
    ],
}


def _ws_article(h: Handler) -> None:
    """A WebSocket (RFC 6455, by hand) that sends :data:`LIVE_ARTICLE` ``?ms=`` after it opens, as
    its one text message, then waits for the client to leave."""
    key = h.headers.get("Sec-WebSocket-Key", "")
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    h.send_response(101)
    h.send_header("Upgrade", "websocket")
    h.send_header("Connection", "Upgrade")
    h.send_header("Sec-WebSocket-Accept", accept.decode())
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True
    if h.server.stop.wait(int(h.query.get("ms", "300")) / 1000):
        return
    payload = json.dumps(LIVE_ARTICLE).encode()
    assert len(payload) < 65536
    header = (
        bytes([0x81, 126]) + len(payload).to_bytes(2, "big") if len(payload) >= 126 else bytes([0x81, len(payload)])
    )
    h.wfile.write(header + payload)
    h.wfile.flush()
    h.connection.settimeout(10)
    with contextlib.suppress(OSError):
        while h.connection.recv(4096):  # until the client closes (frames it sends are not read)
            pass


def _sse_article(h: Handler) -> None:
    """An EventSource stream that sends :data:`LIVE_ARTICLE` ``?ms=`` after it opens, as one named
    event (``event: article``), then stays open until the client leaves."""
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Cache-Control", "no-store")
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True
    if h.server.stop.wait(int(h.query.get("ms", "300")) / 1000):
        return
    article = dict(LIVE_ARTICLE, paragraphs=[*LIVE_ARTICLE["paragraphs"][:2], "Sent as a named server-sent event."])
    h.wfile.write(b"event: article\ndata: " + json.dumps(article).encode() + b"\n\n")
    h.wfile.flush()
    h.connection.settimeout(10)
    with contextlib.suppress(OSError):
        while h.connection.recv(4096):  # until the client closes
            pass


#: A full-viewport canvas of deterministic noise: a screenshot PNG of several MB (1280×900).
NOISE_PAGE = """<!doctype html><html><head><title>Noise</title><style>body{margin:0}</style></head><body>
<canvas id=c width=1280 height=900></canvas><p>A page of noise, with a sentence of text under it.</p>
<script>
const c = document.getElementById('c'), g = c.getContext('2d'), img = g.createImageData(1280, 900);
let x = 12345;
for (let i = 0; i < img.data.length; i++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  img.data[i] = i % 4 === 3 ? 255 : x >>> 24;
}
g.putImageData(img, 0, 0);
</script></body></html>"""


def _slow_body(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    h.wfile.write(b"<html><body><p>start")
    h.wfile.flush()
    h.server.stop.wait(int(h.query.get("ms", "5000")) / 1000)


def _huge(h: Handler) -> None:
    size = int(h.query.get("mb", "30")) * 1024 * 1024
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(size))
    h.end_headers()
    chunk = b"<p>" + b"x" * 1017 + b"</p>\n"
    sent = 0
    while sent < size:
        h.wfile.write(chunk)
        sent += len(chunk)


def _huge_chunked(h: Handler) -> None:
    """A large body without Content-Length: the cap must stop it while streaming."""
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    chunk = b"<p>" + b"y" * 1017 + b"</p>\n"
    for _ in range(int(h.query.get("mb", "30")) * 1024):
        h.wfile.write(chunk)


def _broken(h: Handler) -> None:
    """A response that breaks HTTP or asks for what no fetch has, by ``how`` (tests of both engines'
    typed errors): a body labelled gzip that is not, a body shorter than its Content-Length, a bad
    chunk, two Content-Lengths, a 204, an attachment, an HTTP-auth 401, an origin's 407, an image
    labelled text/html, XHTML that does not parse, a page reloading itself in a loop."""
    article = (PAGES / "article.html").read_bytes()
    how = h.query.get("how", "")
    h.close_connection = True
    if how in ("gzip", "short", "chunk", "two-lengths"):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        if how == "gzip":
            h.send_header("Content-Encoding", "gzip")
        if how == "chunk":
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(article) + (500 if how == "short" else 0)))
        if how == "two-lengths":
            h.send_header("Content-Length", "5")
        h.end_headers()
        h.wfile.write(b"ZZZ\r\nhello\r\n0\r\n\r\n" if how == "chunk" else article)
    elif how == "no-content":
        h.send_response(204)
        h.end_headers()
    elif how == "attachment":
        h.send(200, article, headers={"Content-Disposition": "attachment; filename=article.html"})
    elif how == "basic-auth":
        h.send(401, "<p>Authorization required.</p>", headers={"WWW-Authenticate": 'Basic realm="archive"'})
    elif how == "proxy-auth":
        h.send(407, "<p>Proxy authorization required.</p>", headers={"Proxy-Authenticate": 'Basic realm="x"'})
    elif how == "png-as-html":  # a misconfigured server: an image labelled a page
        h.send(200, PNG, "text/html")
    elif how == "big-headers":  # 60 cookies of 2.5 kB: 150 kB of headers, over httpcore's default 100 kB
        cookies = [("Set-Cookie", f"c{i}={'x' * 2500}; Path=/") for i in range(60)]
        h.send_response(200)
        for name, value in [("Content-Type", "text/html"), ("Content-Length", str(len(article))), *cookies]:
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(article)
    elif how == "half-emoji":  # a script cuts an emoji in half: a lone surrogate in the text and the title
        cut = r"document.querySelector('p').append(' cut \uD83D\uDE00'.slice(0, -1)); document.title += ' \uD83D';"
        script = f"<script>{cut}</script>".encode()
        h.send(200, article.replace(b"</body>", script + b"</body>"))
    elif how == "half-emoji-storage":  # a cookie, and half an emoji kept in localStorage
        script = rb"<script>localStorage.setItem('draft', 'cut \uD83D')</script>"
        h.send(200, article.replace(b"</body>", script + b"</body>"), headers={"Set-Cookie": "kept=yes; Path=/"})
    elif how == "reload-loop":  # the article, reloading itself as soon as it loaded
        h.send(200, article.replace(b"</body>", b"<script>setTimeout(() => location.reload(), 10)</script></body>"))
    elif how == "pdf-as-text":
        h.send(200, PDF, "text/plain")
    elif how == "bad-xhtml":  # XHTML that does not parse: Chromium renders up to the error, under its report
        text = "Tidal streams run fastest between the quarter tides, as every pilot learns early."
        page = f"<html xmlns='http://www.w3.org/1999/xhtml'><body><p>{text}</p><p>unclosed"
        h.send(200, page, "application/xhtml+xml")


def _framed(h: Handler) -> None:
    """A page made of frames, by ``how``: a frameset (a navigation frame and the article), a frameset
    whose content frame is a frameset itself, a wrapper whose one iframe is the article, or an article
    with an iframe of its own (which must stay out of it). The navigation frame's links are relative
    to its own directory."""
    how = h.query.get("how", "frameset")
    article = (PAGES / "article.html").read_text()
    pages = {
        "frameset": "<frameset cols='20%,80%'><frame src='/frames/nav.html'><frame src='/article.html'>"
        "<noframes>Your browser does not show frames.</noframes></frameset>",
        "nested": "<frameset rows='10%,90%'><frame src='/frames/nav.html'><frame src='/framed?how=frameset'>"
        "</frameset>",
        "iframe": "<body style='margin:0'><iframe src='/article.html' style='border:0;width:100%;height:100vh'>"
        "</iframe></body>",
        # A frame the browser refuses to load: its error page is no part of the page.
        "refused": "<frameset rows='50%,50%'><frame src='file:///etc/hostname'><frame src='/article.html'></frameset>",
    }
    if how == "own-text":
        return h.send(200, article.replace("</article>", "<iframe src='/frames/nav.html'></iframe></article>"))
    h.send(200, f"<html><head><title>Framed</title></head>{pages[how]}</html>")


def _frames_nav(h: Handler) -> None:
    links = "<a href='intro.html'>Introduction</a> <a href='../index.html'>Index</a>"
    h.send(200, f"<html><body><nav>{links}</nav></body></html>")


def _gzip_page(h: Handler) -> None:
    body = gzip.compress((PAGES / "article.html").read_bytes())
    h.send(200, body, headers={"Content-Encoding": "gzip"})


def _echo(h: Handler) -> None:
    rows = "".join(f"<li>{k}: {v}</li>" for k, v in h.headers.items())
    h.send(
        200,
        f"<html><head><title>Echo</title></head><body><h1>Request headers</h1><ul>{rows}</ul>"
        f"<p>This page lists the headers the server received for the test to check.</p></body></html>",
    )


def _flaky(h: Handler) -> None:
    """An article while the test lets it work; a 503 once the test sets ``server.failing``."""
    if h.server.failing.is_set():
        h.send(503, "<html><body>Service Unavailable</body></html>")
    else:
        h.page("article.html")


def _etag(h: Handler) -> None:
    """Supports conditional GET: 304 when the client already has version ``v1``."""
    if h.headers.get("If-None-Match") == '"v1"':
        h.send(304, b"", "", headers={"ETag": '"v1"'})
    else:
        h.send(200, (PAGES / "article.html").read_bytes(), headers={"ETag": '"v1"'})


def _fail_then_ok(h: Handler) -> None:
    """503 for the first ``n`` requests of series ``id``, then the article: a recovering origin."""
    series = h.query.get("id", "")
    with h.server._lock:
        h.server.series[series] += 1
        seen = h.server.series[series]
    if seen <= int(h.query.get("n", "2")):
        h.send(503, "<html><body>Service temporarily unavailable</body></html>")
    else:
        h.page("article.html")


def _challenge_script(h: Handler) -> None:
    """The challenge page's vendor script: a 404 here, held by ``/challenge?hold=ID`` (see there)."""
    referer = parse_qs(urlsplit(h.headers.get("Referer") or "").query)
    if "hold" in referer:
        h.server.gate(f"challenge-{referer['hold'][0]}").wait(timeout=30)
    h.page("404.html", 404)


def _spin(h: Handler) -> None:
    """A page whose script never gives its renderer back (a busy loop after some text)."""
    h.send(200, "<!doctype html><title>Spin</title><p>Spinning.</p><script>for (;;) {}</script>")


def _rate_limited(h: Handler) -> None:
    h.send(429, "<html><body>Too many requests</body></html>", headers={"Retry-After": h.query.get("after", "2")})


def _challenge(h: Handler) -> None:
    """A Cloudflare-style JavaScript challenge. With ``pass=1`` its script sets the clearance cookie
    and reloads, as the real one does once the browser passed; with the cookie, the article.

    With ``hold=ID`` the challenge's own script (``/cdn-cgi/…``, which holds the page's ``load``)
    is answered only once the reload has arrived: the page replaces itself before it ever loads,
    as a real challenge does when its scripts are slower than its check."""
    if "cf_clearance=fixture-pass" in (h.headers.get("Cookie") or ""):
        if "hold" in h.query:
            h.server.release(f"challenge-{h.query['hold']}")
        return h.page("article.html")
    h.send(
        403,
        (PAGES / "challenge.html").read_bytes(),
        headers={"cf-mitigated": "challenge", "Server": "cloudflare", "cf-ray": "8a1b2c3d4e5f6a7b-AMS"},
    )


#: An article whose text spells markup and script (escaped, so it is text): shown, never run.
HOSTILE_TEXT = (
    "<!doctype html><html><head><title>Markup as text</title></head><body><article><h1>Markup as text</h1>"
    + '<p>Operators must see this literally: &lt;img src=x onerror="window.pwned=1"&gt; and '
    "&lt;script&gt;window.pwned=2&lt;/script&gt;. It is a paragraph about escaping, long enough to be the "
    "main content of the page and to be extracted as such by every extractor in the chain.</p>"
    * 3
    + "</article></body></html>"
)


def _shrinking(h: Handler) -> None:
    """The long article — or, once the test sets ``server.shrunk``, a fragment of it."""
    if h.server.shrunk.is_set():
        h.send(
            200,
            "<!doctype html><html><head><title>A Very Long Article</title></head><body><main><article>"
            "<h1>A Very Long Article</h1><p>Paragraph 1 of the long article. It tells part 1 of the "
            "story in a few sentences.</p></article></main></body></html>",
        )
    else:
        h.send(200, long_article())


def _robots(h: Handler) -> None:
    """The test's robots.txt (``server.robots``); none published (404) while it is None."""
    if h.server.robots is None:
        return h.page("404.html", 404)
    status, text = h.server.robots
    h.send(status, text, "text/plain; charset=utf-8")


# --- network-policy vectors (tests/security): pages that send the client to ``?to=URL`` ------------

#: A worker that reports back when it has made its request, so a test can wait for it.
_WORKER = (
    "<script>const w = new Worker('/worker.js?{query}'); w.onmessage = () => "
    "document.body.insertAdjacentHTML('beforeend', '<p id=\"worker-done\">worker done</p>')</script>"
)

#: How a page of /embed makes the browser request ``{to}`` (a URL; ``{ws}``: the same as ws://).

EMBEDS: dict[str, str] = {
    "img": "<img src='{to}' alt='x'>",
    "srcset": "<img srcset='{to} 1x' alt='x'>",
    "picture": "<picture><source srcset='{to}'><img src='/image.png' alt='x'></picture>",
    "iframe": "<iframe src='{to}'></iframe>",
    "frame-redirect": "<iframe src='/redirect-to?to={to_q}'></iframe>",
    "object": "<object data='{to}'></object>",
    "embed": "<embed src='{to}'>",
    "script": "<script src='{to}'></script>",
    "module": "<script type='module' src='{to}'></script>",
    "stylesheet": "<link rel='stylesheet' href='{to}'>",
    "css-url": "<style>body {{ background: url('{to}') }}</style>",
    "css-import": "<style>@import url('{to}');</style>",
    "font": "<style>@font-face {{ font-family: x; src: url('{to}') }} body {{ font-family: x }}</style>",
    "video": "<video src='{to}' preload='auto'></video>",
    "audio": "<audio src='{to}' preload='auto'></audio>",
    "svg-image": "<svg width='10' height='10'><image href='{to}' width='10' height='10'/></svg>",
    "prefetch": "<link rel='prefetch' href='{to}'>",
    "preload": "<link rel='preload' as='image' href='{to}'>",
    "modulepreload": "<link rel='modulepreload' href='{to}'>",
    "preconnect": "<link rel='preconnect' href='{to}'>",
    "fetch": "<script>fetch('{to}').catch(() => {{}})</script>",
    "fetch-no-cors": "<script>fetch('{to}', {{mode: 'no-cors'}}).catch(() => {{}})</script>",
    "fetch-redirect": "<script>fetch('/redirect-to?to={to_q}').catch(() => {{}})</script>",
    "xhr": "<script>var x = new XMLHttpRequest(); x.open('GET', '{to}'); x.send();</script>",
    "beacon": "<script>navigator.sendBeacon('{to}', 'data')</script>",
    "event-source": "<script>new EventSource('{to}')</script>",
    "websocket": "<script>try {{ new WebSocket('{ws}') }} catch (e) {{}}</script>",
    "worker": _WORKER.format(query="to={to_q}"),
    "worker-import": _WORKER.format(query="import=1&to={to_q}"),
    "popup": "<script>window.open('{to}')</script>",
    "form-in-frame": (
        "<iframe name='sink'></iframe><form id='f' method='post' action='{to}' target='sink'>"
        "<input name='a' value='b'></form><script>document.getElementById('f').submit()</script>"
    ),
    "file-frame": "<iframe src='file:///etc/passwd'></iframe><img src='file:///etc/hostname'>",
    "chrome-frame": "<iframe src='chrome://version'></iframe>",
}


def _to(h: Handler) -> str:
    return h.query.get("to", "")


def _redirect_to(h: Handler) -> None:
    """An open redirect: ``status`` (302) to ``to``."""
    h.send(int(h.query.get("status", "302")), "", headers={"Location": _to(h)})


def _moving(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html><head><title>Moving</title>{head}</head><body><p>Moving…</p>{body}</body></html>"


def _navigate(h: Handler) -> None:
    """A page that navigates itself to ``to`` by ``how``: a meta refresh, a Refresh header (both after
    ``delay`` s), a script, an auto-submitted form, a frame that sets ``top.location``; or that
    only would without scripts (a meta refresh in ``<noscript>``). ``base``: a ``<base href>`` first."""
    to = _to(h)
    attr, js, quoted = html.escape(to, quote=True), json.dumps(to), html.escape(_quote(to), quote=True)
    how, delay = h.query.get("how", "meta"), h.query.get("delay", "0")  # a refresh's, in seconds
    base = f"<base href='{html.escape(h.query['base'], quote=True)}'>" if "base" in h.query else ""
    if how == "header":
        return h.send(200, _moving(base), headers={"Refresh": f"{delay}; url={to}"})
    pages = {
        "meta": _moving(f"{base}<meta http-equiv='refresh' content='{html.escape(delay)}; url={attr}'>"),
        # Only for readers that run no script (sites send them to an "enable JavaScript" page so).
        "noscript": _moving(f"<noscript><meta http-equiv='refresh' content='0; url={attr}'></noscript>"),
        "location": _moving(f"<script>location.href = {js};</script>"),
        "replace": _moving(f"<script>location.replace({js});</script>"),
        "timer": _moving(f"<script>setTimeout(() => {{ location.assign({js}); }}, 100);</script>"),
        "form": _moving(
            body=f"<form id='f' method='post' action='{attr}'><input name='a' value='b'></form>"
            "<script>document.getElementById('f').submit()</script>"
        ),
        "top": _moving(body=f"<iframe src='/navigate?how=top-frame&to={quoted}'></iframe>"),
        "top-frame": f"<html><body><script>top.location = {js};</script></body></html>",
    }
    h.send(200, pages[how])


def _quote(value: str) -> str:
    return quote(value, safe="")


def _worker(h: Handler) -> None:
    """A same-origin worker script that requests ``to`` (fetch, or importScripts with ``import``)."""
    to = json.dumps(_to(h))
    call = f"importScripts({to})" if h.query.get("import") else f"await fetch({to})"
    script = f"(async () => {{ try {{ {call} }} catch (e) {{}} postMessage('done') }})()"
    h.send(200, script, "application/javascript")


def _embed(h: Handler) -> None:
    """The article, plus one element of kind ``kind`` that makes the browser request ``to``."""
    to = _to(h)
    snippet = EMBEDS[h.query.get("kind", "img")].format(
        to=html.escape(to, quote=True),
        to_q=html.escape(_quote(to), quote=True),
        ws=html.escape(to.replace("http://", "ws://", 1), quote=True),
    )
    page = (PAGES / "article.html").read_text().replace("</body>", f"{snippet}</body>")
    h.send(200, page)


# --- sessions and page actions (tests/integration/test_sessions.py, test_actions.py) -----------------

_PROSE = (
    "<p>This page is part of the fixture site used to test sessions and page actions. It has enough "
    "text to be read as an article: several sentences that say nothing in particular, but say it at "
    "length, so that the extractors find a main content and the quality checks find it complete.</p>"
)


def _doc(title: str, body: str, head: str = "") -> str:
    return (
        f"<!doctype html><html lang='en'><head><title>{html.escape(title)}</title>{head}</head><body>"
        f"<main><article><h1>{html.escape(title)}</h1>{body}{_PROSE}</article></main></body></html>"
    )


def _member(h: Handler) -> str | None:
    for part in (h.headers.get("Cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "member" and value:
            return value
    return None


def _login(h: Handler) -> None:
    """Signs ``user`` in, as sites do: an HttpOnly cookie on a redirect to a welcome page."""
    user = "".join(c for c in h.query.get("user", "guest") if c.isalnum()) or "guest"
    h.send(
        302,
        "",
        headers={"Location": "/welcome", "Set-Cookie": f"member={user}; Path=/; HttpOnly; SameSite=Lax"},
    )


def _sign_in_page(h: Handler) -> None:
    page = (
        "<!doctype html><html><head><title>Sign in</title></head><body><h1>Sign in</h1>"
        "<p>Members only. Please sign in to continue.</p><form action='/login'><input name='user'>"
        "<input type='password' name='password'><button>Sign in</button></form></body></html>"
    )
    h.send(401, page, headers={"WWW-Authenticate": 'Cookie realm="members"'})


def _welcome(h: Handler) -> None:
    """The page after signing in; its script keeps a preference in localStorage."""
    user = _member(h)
    if user is None:
        return _sign_in_page(h)
    theme = json.dumps(f"dark-{user}")
    script = f"<script>localStorage.setItem('theme', {theme});</script>"
    h.send(200, _doc("Your account", f"<p>You are signed in as {user}.</p>", script))


def _login_form(h: Handler) -> None:
    """A sign-in form (GET to /login): type a name, press Enter."""
    form = (
        "<form id='signin' method='get' action='/login'><label>Name <input id='user' name='user'></label>"
        "<button id='go' type='submit'>Sign in</button></form>"
    )
    h.send(200, _doc("Sign in", form))


def _members(h: Handler) -> None:
    """Members only: 401 and a sign-in page without the cookie; with it, the member's page, whose script
    shows the theme the welcome page stored in localStorage (``app=1``: the same as a script-built app)."""
    user = _member(h)
    if user is None:
        return _sign_in_page(h)
    if h.query.get("app"):  # an app shell: plain HTTP sees nothing to read, so render=auto escalates
        content = json.dumps(f"<h1>Members app</h1><p>Welcome back, {user}.</p>{_PROSE}")
        shell = (
            "<!doctype html><html><head><title>Members app</title></head><body><div id='root'></div>"
            f"<script>document.getElementById('root').innerHTML = {content};</script></body></html>"
        )
        return h.send(200, shell)
    script = (
        "<script>document.addEventListener('DOMContentLoaded', () => { document.getElementById('theme')"
        ".textContent = 'Theme: ' + (localStorage.getItem('theme') || 'none'); });</script>"
    )
    h.send(200, _doc("Members area", f"<p>Welcome back, {user}.</p><p id='theme'>Theme: unknown</p>", script))


def _set_cookie(h: Handler) -> None:
    """The article, setting ``name=value``: a cookie no later request may carry unless it is in a session."""
    name, value = h.query.get("name", "tracker"), h.query.get("value", "1")
    h.send(200, (PAGES / "article.html").read_bytes(), headers={"Set-Cookie": f"{name}={value}; Path=/"})


def _reveal(h: Handler) -> None:
    """A chapter hidden until the button is clicked; a button that is never visible."""
    body = (
        "<p>The first chapter is always shown.</p>"
        "<button id='more' onclick=\"document.getElementById('extra').hidden = false\">Show more</button>"
        "<button id='ghost' style='display:none'>Invisible</button>"
        "<section id='extra' hidden><p>The hidden chapter tells how the keeper climbed the tower.</p></section>"
    )
    h.send(200, _doc("Reveal", body))


def _search(h: Handler) -> None:
    """A search form (GET to /results)."""
    form = "<form method='get' action='/results'><input id='q' name='q'><button>Search</button></form>"
    h.send(200, _doc("Search", form))


def _results(h: Handler) -> None:
    q = html.escape(h.query.get("q", ""))
    h.send(200, _doc("Results", f"<p>You searched for: {q}.</p>"))


INFINITE_TOTAL = 50


def _infinite(h: Handler) -> None:
    """An infinite list: 10 items, and 10 more fetched from /items each time the reader nears the end,
    until INFINITE_TOTAL."""
    items = "".join(f"<li class='item'>Item {i} of the endless list.</li>" for i in range(1, 11))
    script = (
        "<script>let loading = false, next = 11;"
        "window.addEventListener('scroll', async () => {"
        " if (loading || window.innerHeight + window.scrollY < document.body.scrollHeight - 50) return;"
        " loading = true; const r = await fetch('/items?from=' + next); const got = await r.json();"
        " for (const t of got) { const li = document.createElement('li'); li.className = 'item';"
        " li.textContent = t; document.getElementById('list').appendChild(li); next += 1; }"
        " loading = false; });</script>"
    )
    style = "<style>li.item { height: 120px; }</style>"
    h.send(200, _doc("Endless list", f"<ul id='list'>{items}</ul>{script}", style))


def _items(h: Handler) -> None:
    start = int(h.query.get("from", "1"))
    end = min(start + 10, INFINITE_TOTAL + 1)
    h.send(200, json.dumps([f"Item {i} of the endless list." for i in range(start, end)]), "application/json")


# --- the regression corpus (tests/regression/corpus.py): pages that behave like real sites' ------------

#: Bot-protection answers: the detection corpus's hand-written vendor pages (fixtures/detect), served
#: with the status, headers and cookies its manifest gives them — one copy of each page, not two.
DETECT = PAGES.parent / "detect"


@functools.cache
def _detect_pages() -> dict[str, dict[str, Any]]:
    """``blocks/*.html`` of the detection manifest by name (the first entry of a file: with headers)."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in json.loads((DETECT / "manifest.json").read_text())["pages"]:
        folder, _, file = entry["file"].partition("/")
        if folder == "blocks" and file.endswith(".html"):
            entries.setdefault(file.removesuffix(".html"), entry)
    return entries


def _blocked_page(h: Handler) -> None:
    """``/blocked/NAME``: ``fixtures/detect/blocks/NAME.html`` as its vendor answers it."""
    entry = _detect_pages().get(urlsplit(h.path).path.rsplit("/", 1)[-1])
    if entry is None:
        return h.page("404.html", 404)
    headers = dict(entry["headers"])
    if entry["cookies"]:
        headers["Set-Cookie"] = entry["cookies"][0]
    h.send(entry["status"], (DETECT / entry["file"]).read_bytes(), headers=headers)


def _swap(h: Handler) -> None:
    """The article — or what the test put in ``server.swapped`` (a page or edit function) instead."""
    page = (PAGES / "article.html").read_text()
    h.send(200, h.server.swapped(page) if h.server.swapped is not None else page)


ROUTES: dict[str, Callable[[Handler], None]] = {
    "/consent": lambda h: h.page("consent.html"),
    "/premium/keepers": lambda h: h.page("paywall.html"),
    "/stories/moved-on": lambda h: h.page("soft-404.html"),
    "/maintenance": lambda h: h.send(
        503,
        "<html><head><title>Down for maintenance</title></head><body><h1>Down for maintenance</h1>"
        "<p>We are upgrading the archive. Please come back in an hour.</p></body></html>",
        headers={"Retry-After": "3600"},
    ),
    "/swap": _swap,
    "/login": _login,
    "/login-form": _login_form,
    "/welcome": _welcome,
    "/members": _members,
    "/set-cookie": _set_cookie,
    "/reveal": _reveal,
    "/search": _search,
    "/results": _results,
    "/infinite": _infinite,
    "/items": _items,
    "/redirect-to": _redirect_to,
    "/navigate": _navigate,
    "/embed": _embed,
    "/worker.js": _worker,
    "/ws-article": _ws_article,
    "/sse-article": _sse_article,
    "/robots.txt": _robots,
    "/fail-then-ok": _fail_then_ok,
    "/rate-limited": _rate_limited,
    "/gate": _hold,  # the same gate under the name the batch tests use
    "/challenge": _challenge,
    "/spin": _spin,
    "/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1": _challenge_script,
    "/shrinking": _shrinking,
    "/hostile-text": lambda h: h.send(200, HOSTILE_TEXT),
    "/flaky": _flaky,
    "/etag": _etag,
    "/js-article": _js_article,
    "/lazy-chunk.js": _lazy_chunk,
    "/needs-cookie": _needs_cookie,
    "/redirect": _redirect,
    "/redirect-loop": _redirect_loop,
    "/slow": _slow,
    "/hold": _hold,
    "/noise": lambda h: h.send(200, NOISE_PAGE),
    "/slow-body": _slow_body,
    "/reset": lambda h: h.reset(),
    "/huge": _huge,
    "/huge-chunked": _huge_chunked,
    "/long": lambda h: h.send(200, long_article()),
    "/cached.js": lambda h: h.send(
        200, "window.cachedScript = true;", "application/javascript", headers={"Cache-Control": "public, max-age=3600"}
    ),
    "/gzip": _gzip_page,
    "/broken": _broken,
    "/framed": _framed,
    "/frames/nav.html": _frames_nav,
    "/echo-headers": _echo,
    "/error": lambda h: h.send(500, "<html><body><h1>Internal Server Error</h1></body></html>"),
    "/unavailable": lambda h: h.send(
        503, "<html><body>Down for maintenance</body></html>", headers={"Retry-After": "7"}
    ),
    "/gone": lambda h: h.send(410, "<html><body>Gone</body></html>"),
    "/data.json": lambda h: h.send(
        200, json.dumps({"name": "widget", "price": 9.5, "tags": ["a", "b"]}), "application/json"
    ),
    "/notes.txt": lambda h: h.send(200, "Plain text notes.\nSecond line: ünïcödé.\n", "text/plain; charset=utf-8"),
    "/doc.pdf": lambda h: h.send(200, PDF, "application/pdf"),
    "/image.png": lambda h: h.send(200, PNG, "image/png"),
    "/octet": lambda h: h.send(200, PNG, ""),
    "/empty": lambda h: h.send(200, "<html><head><title></title></head><body></body></html>"),
    "/latin1-as-utf8": lambda h: h.send(
        200, (PAGES / "encoding.html").read_text().encode("cp1252"), "text/html; charset=utf-8"
    ),
    "/utf8-as-latin1": lambda h: h.send(200, (PAGES / "encoding.html").read_bytes(), "text/html; charset=iso-8859-1"),
    "/meta-charset": lambda h: h.send(200, (PAGES / "cyrillic.html").read_text().encode("windows-1251"), "text/html"),
    "/broken-utf8": lambda h: h.send(
        200,
        (PAGES / "encoding.html").read_bytes().replace(b"caf\xc3\xa9", b"caf\xc3\x28"),
        "text/html; charset=utf-8",
    ),
}


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.stop = threading.Event()  # wakes sleeping handlers at shutdown
        self.failing = threading.Event()  # /flaky answers 503 while set
        self.shrunk = threading.Event()  # /shrinking answers a fragment while set
        self.swapped: Callable[[str], str] | None = None  # /swap: the article passed through this
        self.robots: tuple[int, str] | None = None  # /robots.txt: (status, text)
        self.hits: collections.Counter[str] = collections.Counter()
        self.hit_times: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
        self.series: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self._arrived = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self.serve_forever, name="fixture-site", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1
            self.hit_times[path].append(time.monotonic())
            self._arrived.notify_all()

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 30) -> None:
        """Block (a thread, not the event loop) until ``condition`` holds; re-checked at each hit."""
        with self._arrived:
            if not self._arrived.wait_for(condition, timeout_s):
                raise AssertionError(f"the site never saw what the test waited for; hits: {dict(self.hits)}")

    def gate(self, name: str) -> threading.Event:
        """The gate ``/hold?id=name`` waits on (created closed)."""
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        for gate in list(self._gates.values()):
            gate.set()
        self.shutdown()
        self.server_close()


class TLSFixtureServer(FixtureServer):
    """The same site over HTTPS with a self-signed certificate: clients must refuse it (tls_error)."""

    def __init__(self) -> None:
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def base_url(self) -> str:
        return super().base_url.replace("http://", "https://")


if __name__ == "__main__":  # browse the fixtures by hand: python tests/site.py
    server = FixtureServer(port=8765).start()
    print(f"fixture site on {server.base_url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()
