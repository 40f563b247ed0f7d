"""A fault-injecting origin on 127.0.0.1: every way a site can misbehave, one route each.

Used by the chaos suite (tests/chaos/test_chaos.py, scripts/chaos). Routes never wait longer than
``STALL_S`` and all waits wake at shutdown, so the server always stops promptly.
"""

from __future__ import annotations

import gzip
import random
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

STALL_S = 30.0
ARTICLE = (
    "<!doctype html><html><head><title>Chaos article</title></head><body><nav><a href='/'>Home</a></nav>"
    "<main><article><h1>Chaos article</h1>"
    + "".join(f"<p>Paragraph {i} of a page served while everything around it misbehaves.</p>" for i in range(20))
    + "</article></main></body></html>"
)
JS_ARTICLE = (
    "<!doctype html><html><head><title>Chaos JS</title></head><body><div id='app'></div><script>"
    "setTimeout(function(){document.getElementById('app').innerHTML='<article><h1>Rendered</h1>'+"
    "'<p>This text exists only after the script ran, a moment after load.</p>'.repeat(10)+'</article>';},50);"
    "</script></body></html>"
)
SPIN = "<!doctype html><html><body><p>Spinning.</p><script>while (true) {}</script></body></html>"
POPUPS = (
    "<!doctype html><html><head><title>Popups</title></head><body><article><h1>Popups</h1>"
    "<p>This page opens windows, raises dialogs and starts a download as it loads.</p></article><script>"
    "for (let i = 0; i < 5; i++) window.open('/ok?popup=' + i);"
    "alert('hello'); confirm('sure?'); prompt('name?');"
    "const a = document.createElement('a'); a.href = '/download'; a.download = 'x.bin'; document.body.append(a);"
    "a.click();</script></body></html>"
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChaosOrigin

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_page(
        self,
        status: int,
        body: bytes | str,
        headers: dict[str, str] | None = None,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def do_GET(self) -> None:
        route = ROUTES.get(urlsplit(self.path).path)
        try:
            if route is None:
                self.send_page(404, "<html><body><h1>Not found</h1></body></html>")
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def _reset_mid_body(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(ARTICLE) * 2))
    h.end_headers()
    h.wfile.write(ARTICLE.encode()[:300])
    h.wfile.flush()
    h.reset()


def _stall(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.end_headers()
    h.server.stop.wait(STALL_S)
    h.close_connection = True


def _drip(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(ARTICLE)))
    h.end_headers()
    for byte in ARTICLE.encode():
        if h.server.stop.wait(0.05):
            return
        h.wfile.write(bytes([byte]))
        h.wfile.flush()


def _burst(h: Handler) -> None:
    if h.server.rng.random() < 0.7:
        h.send_page(503, "<html><body>Overloaded</body></html>")
    else:
        h.send_page(200, ARTICLE)


def _bad_gzip(h: Handler) -> None:
    body = gzip.compress(ARTICLE.encode())[:-20]
    h.send_page(200, body, {"Content-Encoding": "gzip"})


def _endless(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    chunk = b"<p>" + b"z" * 4090 + b"</p>"
    while not h.server.stop.is_set():
        h.wfile.write(chunk)


def _wrong_length(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(ARTICLE) + 5000))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(ARTICLE.encode())
    h.close_connection = True


ROUTES: dict[str, Callable[[Handler], None]] = {
    "/ok": lambda h: h.send_page(200, ARTICLE),
    "/js": lambda h: h.send_page(200, JS_ARTICLE),
    "/reset-mid-body": _reset_mid_body,
    "/stall": _stall,
    "/drip": _drip,
    "/burst": _burst,
    "/429": lambda h: h.send_page(429, "<html><body>Slow down</body></html>", {"Retry-After": "1"}),
    "/bad-gzip": _bad_gzip,
    "/loop": lambda h: h.send_page(302, "", {"Location": "/loop"}),
    "/endless": _endless,
    "/wrong-length": _wrong_length,
    "/spin": lambda h: h.send_page(200, SPIN),
    "/popups": lambda h: h.send_page(200, POPUPS),
    "/download": lambda h: h.send_page(
        200,
        b"\x00" * 4096,
        {"Content-Disposition": "attachment; filename=x.bin"},
        content_type="application/octet-stream",
    ),
}


class ChaosOrigin(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, seed: int = 7) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stop = threading.Event()
        self.rng = random.Random(seed)
        self._thread = threading.Thread(target=self.serve_forever, name="chaos-origin", daemon=True)

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def start(self) -> ChaosOrigin:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
