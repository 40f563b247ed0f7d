"""Which page-pool design isolates every request at the highest throughput?

One shared Chromium, ``N`` slots driven by ``N`` concurrent clients, each client doing
lease → ``goto(url, wait_until="load")`` + ``page.content()`` → release, over ~20 small pages
served by a local HTTP server on 127.0.0.1 (some pages set cookies, localStorage, sessionStorage
and IndexedDB; one reports the state it can see). Designs:

``baseline``
    plain Playwright: one context, ``N`` tabs reused as they are. Not isolated; the reference.
``per-request``
    ``browser.new_context()`` + ``new_page()`` per lease, ``context.close()`` on release.
``reset-cdp``
    one context + page per slot; on release: navigate to ``about:blank``, ``context.clear_cookies()``,
    then CDP ``Storage.clearDataForOrigin(storageTypes="all")`` for every origin any frame visited.
``reset-js``
    one context + page per slot; on release: in every frame, ``page.evaluate`` clears
    localStorage, sessionStorage and deletes every IndexedDB database; then ``about:blank`` and
    ``context.clear_cookies()``.
``reset-full``
    reset-cdp plus fixes for what reset-cdp was seen to leak: ``window.name = ''`` on the blank
    page and CDP ``Network.clearBrowserCache``.
``prewarm``
    each slot holds a ready fresh context + page; on release an asyncio task closes the old context
    and creates the next one in the background, so the next lease of the slot gets a ready page.

For every design and slot count the same run also does an isolation check: on each slot, lease k
visits ``/set`` (cookies incl. HttpOnly, localStorage, sessionStorage, IndexedDB, CacheStorage, a
service worker, an HTTP-cached script, ``window.name``, a same-site iframe from a second origin
that stores its own state, and a ``pagehide`` handler that writes localStorage as the page is
left); lease k+1 on the same slot visits ``/probe`` and reports what it sees, plus two linkability
signals: ``history.length`` above a fresh tab's, and whether its request arrived on a keep-alive
connection that had already carried requests. A positive control (set then probe in one tab)
proves the probe can see every item; a probe in a fresh context must see none.

The machine may be shared: CPU used by processes outside the benchmark is measured for every run;
a run is started only once the machine is quiet and repeated when others took more than
``--max-other-cpu`` of it meanwhile; the table shows what they took.

Reproduce: ``.venv/bin/python bench/pool_isolation.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, CDPSession, Frame, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-dev-shm-usage",
]
WORKLOAD_PAGES = 19  # /page/0 … /page/18, plus /probe: 20 URLs in rotation
PAGE_KINDS = ("static", "header-cookie", "js-storage", "indexeddb", "everything")
RELEASE_TIMEOUT_S = 10.0

#: What the isolation check looks for, in table order.
ITEMS = (
    "cookie",
    "localStorage",
    "sessionStorage",
    "IndexedDB",
    "CacheStorage",
    "serviceWorker",
    "HTTP cache",
    "iframe origin",
    "window.name",
    "history",
    "connection",
)
#: The items a later workload page can carry over; checked on the /probe loads inside timed runs.
STATE_ITEMS = ("cookie", "localStorage", "sessionStorage", "IndexedDB", "iframe origin")

# --- the local site ----------------------------------------------------------------------------

FILLER = "\n".join(
    f"<p>Paragraph {n}: a few sentences of ordinary text so that the page has a body to parse, "
    f"lay out and serialise. Nothing here is remote; every byte comes from 127.0.0.1.</p>"
    for n in range(1, 9)
)

JS_COOKIE_STORAGE = """
document.cookie = 'js___I__=1; path=/; max-age=3600';
localStorage.setItem('ls___I__', '1');
sessionStorage.setItem('ss___I__', '1');
"""

JS_INDEXEDDB = """
(function () {
  var req = indexedDB.open('db___I__', 1);
  req.onupgradeneeded = function () { req.result.createObjectStore('s'); };
  req.onsuccess = function () {  // the connection stays open, as on most sites
    window.__db = req.result;
    req.result.transaction('s', 'readwrite').objectStore('s').put('v', 'k');
  };
})();
"""

#: Registered in <head> before the iframe is parsed, so its message cannot be missed.
JS_FRAME_LISTENER = """
window.__frameReport = new Promise(function (resolve) {
  addEventListener('message', function (e) {
    if (e.data && e.data.kind === '__KIND__') resolve(e.data);
  });
  setTimeout(function () { resolve(null); }, 5000);
});
"""

JS_SET = """
window.name = 'lease-state';
window.__stateSet = (async function () {
  document.cookie = 'js_set=1; path=/; max-age=3600';
  localStorage.setItem('ls_set', '1');
  sessionStorage.setItem('ss_set', '1');
  await new Promise(function (resolve, reject) {
    var req = indexedDB.open('db_set', 1);
    req.onupgradeneeded = function () { req.result.createObjectStore('s'); };
    req.onsuccess = function () {
      window.__db = req.result;  // kept open, as many sites do
      var tx = req.result.transaction('s', 'readwrite');
      tx.objectStore('s').put('v', 'k');
      tx.oncomplete = function () { resolve(); };
      tx.onerror = function () { reject(tx.error); };
    };
    req.onerror = function () { reject(req.error); };
  });
  var cache = await caches.open('cache_set');
  await cache.put('/cache-entry', new Response('x'));
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  // Analytics-style: persist something as the page is left.
  addEventListener('pagehide', function () { localStorage.setItem('ls_pagehide', '1'); });
  var frame = await window.__frameReport;
  return {cache_token: window.__cacheToken || null, frame: frame};
})();
"""

JS_PROBE = """
window.__probe = (async function () {
  var dbs = [], cacheKeys = [], workers = [];
  try { dbs = (await indexedDB.databases()).map(function (d) { return d.name; }); }
  catch (e) { dbs = ['error: ' + e]; }
  try { cacheKeys = await caches.keys(); } catch (e) { cacheKeys = ['error: ' + e]; }
  try {
    workers = (await navigator.serviceWorker.getRegistrations()).map(function (r) { return r.scope; });
  } catch (e) { workers = ['error: ' + e]; }
  return {
    server_cookies: SERVER_COOKIES,
    js_cookie: document.cookie,
    local_storage: Object.keys(localStorage),
    session_storage: Object.keys(sessionStorage),
    indexeddb: dbs,
    cache_storage: cacheKeys,
    service_workers: workers,
    cache_token: window.__cacheToken || null,
    window_name: window.name,
    history_length: history.length,
    connection_served: window.__connectionServed,
    frame: await window.__frameReport
  };
})();
"""

JS_FRAME_SET = """
(async function () {
  localStorage.setItem('ls_frame', '1');
  sessionStorage.setItem('ss_frame', '1');
  await new Promise(function (resolve) {
    var req = indexedDB.open('db_frame', 1);
    req.onupgradeneeded = function () { req.result.createObjectStore('s'); };
    req.onsuccess = function () {
      window.__db = req.result;
      var tx = req.result.transaction('s', 'readwrite');
      tx.objectStore('s').put('v', 'k');
      tx.oncomplete = function () { resolve(); };
    };
    req.onerror = function () { resolve(); };
  });
  parent.postMessage({kind: 'frame-set', ok: true}, '*');
})();
"""

JS_FRAME_PROBE = """
(async function () {
  var dbs = [];
  try { dbs = (await indexedDB.databases()).map(function (d) { return d.name; }); } catch (e) {}
  parent.postMessage({
    kind: 'frame-probe',
    local_storage: Object.keys(localStorage),
    session_storage: Object.keys(sessionStorage),
    indexeddb: dbs
  }, '*');
})();
"""

JS_SERVICE_WORKER = """
self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (e) { e.waitUntil(self.clients.claim()); });
"""

#: reset-js: runs in each frame before the page is left. A blocked deleteDatabase (the page still
#: holds a connection) completes once the page is gone, so it is not awaited past "blocked".
JS_CLEAR = """
async () => {
  try { localStorage.clear(); } catch (e) {}
  try { sessionStorage.clear(); } catch (e) {}
  try {
    const dbs = await indexedDB.databases();
    await Promise.all(dbs.map((d) => new Promise((resolve) => {
      const req = indexedDB.deleteDatabase(d.name);
      req.onsuccess = req.onerror = req.onblocked = () => resolve(null);
    })));
  } catch (e) {}
}
"""


CACHED_SCRIPT = "<script src='/cached.js'></script>"


def _html(title: str, body: str, head: str = "", page_id: str = "") -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<link rel='stylesheet' href='/static/site.css'>{head}</head>"
        f"<body data-page='{page_id}'><main><h1>{title}</h1>{body}</main></body></html>"
    )


def _script(js: str) -> str:
    return f"<script>{js}</script>"


def workload_page(index: int) -> tuple[str, list[str]]:
    """One workload page and its Set-Cookie headers; the kind rotates through PAGE_KINDS."""
    kind = PAGE_KINDS[index % len(PAGE_KINDS)]
    cookies: list[str] = []
    scripts: list[str] = []
    if kind in ("header-cookie", "everything"):
        cookies.append(f"hdr_{index}=1; Path=/; Max-Age=3600; HttpOnly")
    if kind in ("js-storage", "everything"):
        scripts.append(JS_COOKIE_STORAGE.replace("__I__", str(index)))
    if kind in ("indexeddb", "everything"):
        scripts.append(JS_INDEXEDDB.replace("__I__", str(index)))
    body = FILLER + "".join(_script(js) for js in scripts)
    return _html(f"Page {index} ({kind})", body, page_id=f"page-{index}"), cookies


class Handler(BaseHTTPRequestHandler):
    """One instance per TCP connection, so ``served`` counts the requests a keep-alive connection carried."""

    protocol_version = "HTTP/1.1"
    server: SiteServer
    served = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: str, content_type: str, headers: list[tuple[str, str]] | None = None) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        earlier, self.served = self.served, self.served + 1
        path = urlsplit(self.path).path
        html = "text/html; charset=utf-8"
        no_store = [("Cache-Control", "no-store")]
        peer = self.server.peer
        if path.startswith("/page/") and path[6:].isdigit():
            page, cookies = workload_page(int(path[6:]))
            self._send(page, html, no_store + [("Set-Cookie", c) for c in cookies])
        elif path == "/probe":
            names = sorted(part.split("=", 1)[0].strip() for part in (self.headers.get("Cookie") or "").split(";"))
            cookies_js = json.dumps([n for n in names if n]).replace("<", "\\u003c")
            head = _script(JS_FRAME_LISTENER.replace("__KIND__", "frame-probe")) + CACHED_SCRIPT
            facts = f"var SERVER_COOKIES = {cookies_js};\nwindow.__connectionServed = {earlier};\n"
            body = f"<iframe src='{peer}/frame-probe'></iframe>" + _script(facts + JS_PROBE)
            self._send(_html("State probe", body, head, "probe"), html, no_store)
        elif path == "/set":
            head = _script(JS_FRAME_LISTENER.replace("__KIND__", "frame-set")) + CACHED_SCRIPT
            body = f"<iframe src='{peer}/frame-set'></iframe>" + _script(JS_SET)
            set_cookies = [
                ("Set-Cookie", "srv_http=1; Path=/; Max-Age=3600; HttpOnly"),
                ("Set-Cookie", "srv_session=1; Path=/"),
            ]
            self._send(_html("State setter", body, head, "set"), html, no_store + set_cookies)
        elif path == "/frame-set":
            self._send(_html("frame", _script(JS_FRAME_SET)), html, no_store)
        elif path == "/frame-probe":
            self._send(_html("frame", _script(JS_FRAME_PROBE)), html, no_store)
        elif path == "/sw.js":
            self._send(JS_SERVICE_WORKER, "text/javascript", no_store)
        elif path == "/cached.js":
            # A new token per response: a second lease that gets the same token read it from cache.
            token = uuid.uuid4().hex
            self._send(
                f"window.__cacheToken = '{token}';", "text/javascript", [("Cache-Control", "public, max-age=3600")]
            )
        elif path == "/static/site.css":
            self._send(
                "body{font-family:sans-serif;max-width:40em}", "text/css", [("Cache-Control", "public, max-age=3600")]
            )
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    peer = ""  # the other origin, for the iframes


class Site:
    """Two origins on 127.0.0.1 (two ports: same site, different origins), each in its own thread."""

    def __init__(self) -> None:
        self.main = SiteServer(("127.0.0.1", 0), Handler)
        self.other = SiteServer(("127.0.0.1", 0), Handler)
        self.main.peer = self.origin(self.other)
        self.other.peer = self.origin(self.main)
        self._threads = [
            threading.Thread(target=s.serve_forever, name=f"site-{i}", daemon=True)
            for i, s in enumerate((self.main, self.other))
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def origin(server: SiteServer) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin(self.main) + path

    def workload(self) -> list[str]:
        return [self.url(f"/page/{i}") for i in range(WORKLOAD_PAGES)] + [self.url("/probe")]

    def stop(self) -> None:
        for server in (self.main, self.other):
            server.shutdown()
            server.server_close()


# --- probe reports -----------------------------------------------------------------------------


@dataclass
class Reference:
    """What lease k left for the linkability items: its cached.js token; a fresh tab's history.length."""

    cache_token: str | None
    fresh_history: int


def leaks(report: dict[str, Any], reference: Reference | None = None) -> dict[str, list[str]]:
    """What a probe saw, per ITEM (only the stored-state ones without a reference); {} = clean."""
    frame = report.get("frame") or {}
    cookies = list(report["server_cookies"])
    cookies += [c.split("=", 1)[0].strip() for c in report["js_cookie"].split(";") if c.strip()]
    found: dict[str, list[str]] = {
        "cookie": sorted(set(cookies)),
        "localStorage": report["local_storage"],
        "sessionStorage": report["session_storage"],
        "IndexedDB": report["indexeddb"],
        "iframe origin": [
            f"{kind}:{key}" for kind in ("local_storage", "session_storage", "indexeddb") for key in frame.get(kind, [])
        ],
    }
    if reference is not None:
        served, history = report["connection_served"], report["history_length"]
        found |= {
            "CacheStorage": report["cache_storage"],
            "serviceWorker": report["service_workers"],
            "HTTP cache": ["cached.js token reused"]
            if reference.cache_token and report["cache_token"] == reference.cache_token
            else [],
            "window.name": [report["window_name"]] if report["window_name"] else [],
            "history": [f"history.length {history}"] if history > reference.fresh_history else [],
            "connection": [f"keep-alive connection had served {served} requests"] if served else [],
        }
    return {item: values for item, values in found.items() if values}


# --- pool designs ------------------------------------------------------------------------------


@dataclass
class Slot:
    index: int
    context: BrowserContext | None = None
    page: Page | None = None
    cdp: CDPSession | None = None
    origins: set[str] = field(default_factory=set)
    ready: asyncio.Task[tuple[BrowserContext, Page]] | None = None


@dataclass
class Lease:
    slot: Slot
    page: Page


class Pool:
    """N slots and a FIFO of free ones; subclasses decide what a slot holds and how it is released."""

    name: ClassVar[str] = ""

    def __init__(self, browser: Browser, size: int) -> None:
        self.browser = browser
        self.size = size
        self.slots = [Slot(i) for i in range(size)]
        self._free: asyncio.Queue[Slot] = asyncio.Queue()

    async def start(self) -> None:
        for slot in self.slots:
            await self._init_slot(slot)
            self._free.put_nowait(slot)

    async def acquire(self, index: int | None = None) -> Lease:
        slot = await self._free.get()
        while index is not None and slot.index != index:  # only used while the pool is idle
            self._free.put_nowait(slot)
            slot = await self._free.get()
        return Lease(slot, await self._page(slot))

    async def release(self, lease: Lease) -> None:
        try:
            await asyncio.wait_for(self._release(lease.slot), RELEASE_TIMEOUT_S)
        finally:
            self._free.put_nowait(lease.slot)

    async def close(self) -> None:
        for slot in self.slots:
            if slot.ready is not None:
                with contextlib.suppress(Exception):
                    slot.context, slot.page = await slot.ready
            if slot.context is not None:
                with contextlib.suppress(PlaywrightError):
                    await slot.context.close()

    async def _init_slot(self, slot: Slot) -> None:
        pass

    async def _page(self, slot: Slot) -> Page:
        assert slot.page is not None
        return slot.page

    async def _release(self, slot: Slot) -> None:
        pass

    async def _fresh(self) -> tuple[BrowserContext, Page]:
        context = await self.browser.new_context()
        return context, await context.new_page()


class SharedContextPool(Pool):
    name = "baseline"

    async def start(self) -> None:
        context = await self.browser.new_context()
        for slot in self.slots:
            slot.context, slot.page = context, await context.new_page()
            self._free.put_nowait(slot)

    async def close(self) -> None:
        context = self.slots[0].context
        if context is not None:
            with contextlib.suppress(PlaywrightError):
                await context.close()


class PerRequestPool(Pool):
    name = "per-request"

    async def _page(self, slot: Slot) -> Page:
        slot.context, slot.page = await self._fresh()
        return slot.page

    async def _release(self, slot: Slot) -> None:
        context, slot.context, slot.page = slot.context, None, None
        assert context is not None
        await context.close()


class ResetPool(Pool):
    """One context + page per slot, reset on release; the origins of every frame are recorded."""

    async def _init_slot(self, slot: Slot) -> None:
        slot.context, slot.page = await self._fresh()
        slot.page.on("framenavigated", lambda frame: self._visited(slot, frame))

    @staticmethod
    def _visited(slot: Slot, frame: Frame) -> None:
        parts = urlsplit(frame.url)
        if parts.scheme in ("http", "https"):
            slot.origins.add(f"{parts.scheme}://{parts.netloc}")


class ResetCdpPool(ResetPool):
    name = "reset-cdp"

    async def _init_slot(self, slot: Slot) -> None:
        await super()._init_slot(slot)
        assert slot.context is not None and slot.page is not None
        slot.cdp = await slot.context.new_cdp_session(slot.page)

    async def _release(self, slot: Slot) -> None:
        assert slot.context is not None and slot.page is not None and slot.cdp is not None
        await slot.page.goto("about:blank")  # first, so no script of the page can write after the clear
        await slot.context.clear_cookies()
        origins, slot.origins = slot.origins, set()
        for origin in origins:
            await slot.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})


class ResetFullPool(ResetCdpPool):
    """reset-cdp plus the fixes for what it was seen to leak: the HTTP cache and window.name."""

    name = "reset-full"

    async def _release(self, slot: Slot) -> None:
        await super()._release(slot)
        assert slot.page is not None and slot.cdp is not None
        await slot.page.evaluate("window.name = ''")  # the tab's name outlives navigations
        await slot.cdp.send("Network.clearBrowserCache")


class ResetJsPool(ResetPool):
    name = "reset-js"

    async def _release(self, slot: Slot) -> None:
        assert slot.context is not None and slot.page is not None
        for frame in slot.page.frames:
            if frame.url.startswith("http"):
                with contextlib.suppress(PlaywrightError):
                    await frame.evaluate(JS_CLEAR)
        await slot.page.goto("about:blank")
        await slot.context.clear_cookies()
        slot.origins.clear()


class PrewarmPool(Pool):
    name = "prewarm"

    def __init__(self, browser: Browser, size: int) -> None:
        super().__init__(browser, size)
        self.waits_ms: list[float] = []  # how long a lease waited for its slot's fresh page

    async def _init_slot(self, slot: Slot) -> None:
        slot.context, slot.page = await self._fresh()

    async def _page(self, slot: Slot) -> Page:
        if slot.ready is not None:
            started = time.perf_counter()
            slot.context, slot.page = await slot.ready
            slot.ready = None
            self.waits_ms.append((time.perf_counter() - started) * 1000)
        assert slot.page is not None
        return slot.page

    async def _release(self, slot: Slot) -> None:
        old, slot.context, slot.page = slot.context, None, None
        assert old is not None
        slot.ready = asyncio.create_task(self._replace(old))

    async def _replace(self, old: BrowserContext) -> tuple[BrowserContext, Page]:
        async def close_old() -> None:
            with contextlib.suppress(PlaywrightError):
                await old.close()

        fresh, _ = await asyncio.gather(self._fresh(), close_old())
        return fresh


DESIGNS: dict[str, type[Pool]] = {
    cls.name: cls for cls in (SharedContextPool, PerRequestPool, ResetCdpPool, ResetJsPool, ResetFullPool, PrewarmPool)
}
DESCRIPTIONS = {
    "baseline": "one context, N reused tabs (NOT isolated)",
    "per-request": "new_context()+new_page() per lease, close after",
    "reset-cdp": "reuse; about:blank, clear_cookies, CDP clearDataForOrigin(all)",
    "reset-js": "reuse; JS clear storage+IDB per frame, about:blank, clear_cookies",
    "reset-full": "reset-cdp + window.name='' + CDP Network.clearBrowserCache",
    "prewarm": "fresh context per lease, replaced in a background task",
}


# --- CPU used by others ------------------------------------------------------------------------


@dataclass
class CpuSnapshot:
    busy: int  # machine-wide non-idle ticks
    ours: int  # ticks of this benchmark's process tree (driver, Chromium), incl. reaped children


def cpu_snapshot() -> CpuSnapshot:
    """Read /proc (zeros elsewhere). Others' CPU = machine busy − ours, so short-lived jobs count too."""
    if not os.path.isfile("/proc/stat"):
        return CpuSnapshot(0, 0)
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, handle.readline().split()[1:9])
    stats: dict[int, tuple[int, int]] = {}  # pid → (ppid, utime+stime+cutime+cstime)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    ours = {os.getpid()}
    while grown := {pid for pid, (ppid, _) in stats.items() if ppid in ours} - ours:
        ours |= grown
    return CpuSnapshot(user + nice + system + irq + softirq + steal, sum(stats[p][1] for p in ours if p in stats))


def cpu_share(before: CpuSnapshot, after: CpuSnapshot, elapsed_s: float) -> float:
    """Share of all cores used between two snapshots by processes outside this benchmark."""
    if elapsed_s <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.ours - before.ours)
    return max(0, others) / os.sysconf("SC_CLK_TCK") / (elapsed_s * (os.cpu_count() or 1))


# --- measurements ------------------------------------------------------------------------------


@dataclass
class RunResult:
    design: str
    slots: int
    pages: int
    elapsed_s: float
    request_ms: list[float]
    load_ms: list[float]
    overhead_ms: list[float]
    errors: int
    probes: int
    probe_leaks: int
    isolation: list[dict[str, list[str]]]
    prewarm_waits_ms: list[float]
    other_cpu: float = 0.0  # share of the machine's CPU that processes outside this benchmark used

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.elapsed_s


async def run_load(pool: Pool, urls: list[str], pages: int, think_s: float) -> RunResult:
    """``pool.size`` clients share ``pages`` loads; each one lease → goto(load) + content() → release."""
    counter = itertools.count()
    result = RunResult(pool.name, pool.size, pages, 0.0, [], [], [], 0, 0, 0, [], [])

    async def client() -> None:
        while (i := next(counter)) < pages:
            url = urls[i % len(urls)]
            started = time.perf_counter()
            lease = await pool.acquire()
            got = time.perf_counter()
            try:
                await lease.page.goto(url, wait_until="load")
                html = await lease.page.content()
                loaded = time.perf_counter()
                if "data-page=" not in html:
                    result.errors += 1
                if url.endswith("/probe"):
                    report = await lease.page.evaluate("window.__probe")
                    result.probes += 1
                    result.probe_leaks += bool(leaks(report))
            except PlaywrightError:
                result.errors += 1
                loaded = time.perf_counter()
            finally:
                releasing = time.perf_counter()
                await pool.release(lease)
            done = time.perf_counter()
            result.load_ms.append((loaded - got) * 1000)
            result.request_ms.append((done - started) * 1000 - (releasing - loaded) * 1000)
            result.overhead_ms.append(((got - started) + (done - releasing)) * 1000)
            if think_s:
                await asyncio.sleep(think_s)

    before = cpu_snapshot()
    begin = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(pool.size)))
    result.elapsed_s = time.perf_counter() - begin
    result.other_cpu = cpu_share(before, cpu_snapshot(), result.elapsed_s)
    return result


async def isolation_check(pool: Pool, site: Site, fresh_history: int) -> list[dict[str, list[str]]]:
    """On every slot: lease k sets state everywhere, lease k+1 on the same slot probes for it."""
    found: list[dict[str, list[str]]] = []
    for index in range(pool.size):
        lease = await pool.acquire(index)
        try:
            await lease.page.goto(site.url("/set"), wait_until="load")
            state = await lease.page.evaluate("window.__stateSet")
        finally:
            await pool.release(lease)
        lease = await pool.acquire(index)
        try:
            await lease.page.goto(site.url("/probe"), wait_until="load")
            report = await lease.page.evaluate("window.__probe")
        finally:
            await pool.release(lease)
        found.append(leaks(report, Reference(state["cache_token"], fresh_history)))
    return found


@dataclass
class SelfTest:
    fresh_history: int  # history.length of a first navigation in a fresh tab
    clean: dict[str, list[str]]  # a probe in a fresh context: must be empty
    positive: dict[str, list[str]]  # set, then probe in the same tab: every item must show


async def probe_self_test(browser: Browser, site: Site) -> SelfTest:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(site.url("/probe"))
        first = await page.evaluate("window.__probe")
        fresh_history = int(first["history_length"])
        clean = leaks(first, Reference(None, fresh_history))
        await page.goto(site.url("/set"))
        state = await page.evaluate("window.__stateSet")
        await page.goto(site.url("/probe"))
        positive = leaks(await page.evaluate("window.__probe"), Reference(state["cache_token"], fresh_history))
    finally:
        await context.close()
    return SelfTest(fresh_history, clean, positive)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_costs(browser: Browser, site: Site, iterations: int) -> dict[str, list[float]]:
    """Sequential, idle browser: new_context()+new_page(); close() of a blank one; close() after a load."""
    costs: dict[str, list[float]] = {
        "new_context+new_page": [],
        "close (blank page)": [],
        "close (after a load)": [],
    }
    for _ in range(iterations):
        started = time.perf_counter()
        context = await browser.new_context()
        page = await context.new_page()
        created = time.perf_counter()
        await context.close()
        costs["new_context+new_page"].append((created - started) * 1000)
        costs["close (blank page)"].append((time.perf_counter() - created) * 1000)
    for i in range(iterations):
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(site.url(f"/page/{i % WORKLOAD_PAGES}"), wait_until="load")
        started = time.perf_counter()
        await context.close()
        costs["close (after a load)"].append((time.perf_counter() - started) * 1000)
    return costs


async def run_one(
    browser: Browser, site: Site, design: str, slots: int, fresh_history: int, args: argparse.Namespace
) -> RunResult:
    pool = DESIGNS[design](browser, slots)
    await pool.start()
    try:
        urls = site.workload()
        await run_load(pool, urls, args.warmup, 0.0)
        result = await run_load(pool, urls, args.pages, args.think_ms / 1000)
        if isinstance(pool, PrewarmPool):
            result.prewarm_waits_ms = pool.waits_ms[-args.pages :]  # the timed run's leases only
        result.isolation = await isolation_check(pool, site, fresh_history)
    finally:
        await pool.close()
    return result


async def wait_until_quiet(limit: float, max_wait_s: float) -> float:
    """Wait (up to max_wait_s) until other processes use under ``limit`` of the CPU; returns their share."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = cpu_snapshot()
        await asyncio.sleep(2.0)
        share = cpu_share(before, cpu_snapshot(), 2.0)
        if share < limit or time.monotonic() > deadline:
            return share
        _log(f"  machine busy: other processes use {share:.0%} of the CPU; waiting")


async def run_quietly(
    browser: Browser, site: Site, design: str, slots: int, fresh_history: int, args: argparse.Namespace
) -> RunResult:
    """One run; repeated (after waiting for quiet) when other processes took a share of the CPU."""
    for attempt in range(1 + args.retries):
        if args.max_other_cpu < 1:
            await wait_until_quiet(args.max_other_cpu, args.quiet_wait_s)
        result = await run_one(browser, site, design, slots, fresh_history, args)
        if result.other_cpu <= args.max_other_cpu or attempt == args.retries:
            return result
        _log(f"  {design} N={slots}: other processes used {result.other_cpu:.0%} of the CPU; run repeated")
    raise AssertionError("unreachable")


# --- report ------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_report(
    results: dict[tuple[str, int], list[RunResult]],
    designs: list[str],
    slot_counts: list[int],
    costs: dict[str, list[float]],
    costs_other_cpu: float,
    self_test: SelfTest,
    args: argparse.Namespace,
) -> None:
    positive, clean = self_test.positive, self_test.clean
    print(
        f"\nChromium {CHROMIUM}, {args.pages} timed loads per run (+{args.warmup} warm-up), "
        f"{args.rounds} round(s), think time {args.think_ms} ms; medians over rounds, latencies pooled."
    )
    missing = [item for item in ITEMS if item not in positive]
    print(
        f"Probe self-test: positive control sees {len(positive)}/{len(ITEMS)} items"
        f"{f' (MISSING: {missing})' if missing else ''}; a clean context sees {clean or 'nothing'}."
    )

    print(f"\nBare costs (sequential, idle browser; other processes used {costs_other_cpu:.0%} of the CPU):")
    for name, values in costs.items():
        print(
            f"  {name:<24} mean {_mean(values):7.1f} ms   p50 {_pct(values, 0.5):7.1f}   "
            f"p95 {_pct(values, 0.95):7.1f}   (n={len(values)})"
        )

    header = (
        f"{'design':<12} {'N':>2} {'pages/s':>8} {'(min-max)':>13} {'x base':>7} {'req p50':>8} "
        f"{'req p95':>8} {'load p50':>9} {'load p95':>9} {'iso ms':>7} {'err':>4} "
        f"{'run-probe leaks':>15} {'isolation check':>16} {'other CPU':>9}"
    )
    print("\nThroughput and latency (req = lease+load+release as a caller waits; load = goto+content;")
    print("iso ms = mean acquire+release overhead; run-probe leaks = /probe loads inside the timed run")
    print("that saw earlier state; isolation check = slots whose lease k+1 saw lease k's state;")
    print("other CPU = share of the machine used meanwhile by processes outside this benchmark):\n")
    print(header)
    print("-" * len(header))
    for slots in slot_counts:
        base_runs = results.get(("baseline", slots), [])
        for design in designs:
            runs = results[(design, slots)]
            pps = [r.pages_per_s for r in runs]
            ratios = [r.pages_per_s / b.pages_per_s for r, b in zip(runs, base_runs, strict=False)]
            req = [v for r in runs for v in r.request_ms]
            load = [v for r in runs for v in r.load_ms]
            over = [v for r in runs for v in r.overhead_ms]
            checks = [c for r in runs for c in r.isolation]
            leaky = sum(bool(c) for c in checks)
            ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
            print(
                f"{design:<12} {slots:>2} {statistics.median(pps):8.1f} "
                f"{f'({min(pps):.0f}-{max(pps):.0f})':>13} {ratio:>7} {_pct(req, 0.5):8.1f} "
                f"{_pct(req, 0.95):8.1f} {_pct(load, 0.5):9.1f} {_pct(load, 0.95):9.1f} {_mean(over):7.1f} "
                f"{sum(r.errors for r in runs):>4} "
                f"{f'{sum(r.probe_leaks for r in runs)}/{sum(r.probes for r in runs)}':>15} "
                f"{f'LEAK {leaky}/{len(checks)}' if leaky else f'clean {len(checks)}/{len(checks)}':>16} "
                f"{statistics.median(r.other_cpu for r in runs):>9.0%}"
            )
        print()

    print("Isolation check by item (leaked in k of n slot checks; '-' = never). history = lease k+1's")
    print("tab still holds lease k's navigations; connection = lease k+1's request came over a keep-alive")
    print("connection that earlier leases had used (the origin can link them):\n")
    width = max(len(i) for i in ITEMS)
    item_header = f"{'design':<12} {'N':>2} " + " ".join(f"{i:>{min(width, 14)}}" for i in ITEMS)
    print(item_header)
    print("-" * len(item_header))
    for slots in slot_counts:
        for design in designs:
            checks = [c for r in results[(design, slots)] for c in r.isolation]
            cells = []
            for item in ITEMS:
                k = sum(item in c for c in checks)
                cells.append(f"{(f'{k}/{len(checks)}' if k else '-'):>{min(width, 14)}}")
            print(f"{design:<12} {slots:>2} " + " ".join(cells))
    print("\nWhat leaked (first check that leaked, per design and N):")
    for slots in slot_counts:
        for design in designs:
            runs = results[(design, slots)]
            first = next((c for r in runs for c in r.isolation if c), None)
            detail = "; ".join(f"{k}={v}" for k, v in first.items()) if first else "nothing"
            print(f"  {design:<12} N={slots}: {detail}")
    for slots in slot_counts:
        waits = [w for r in results.get(("prewarm", slots), []) for w in r.prewarm_waits_ms]
        if waits:
            ready = sum(w < 1.0 for w in waits) / len(waits)
            print(
                f"\nprewarm N={slots}: the lease found its fresh page ready {ready:.0%} of the time; "
                f"wait p50 {_pct(waits, 0.5):.1f} ms, p95 {_pct(waits, 0.95):.1f} ms."
            )
    print("\nDesigns:")
    for design in designs:
        print(f"  {design:<12} {DESCRIPTIONS[design]}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    designs: list[str] = args.designs
    site = Site()
    results: dict[tuple[str, int], list[RunResult]] = {(d, n): [] for d in designs for n in args.slots}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                _log(f"Chromium {browser.version}; site at {site.url('/')} and {site.main.peer}")
                self_test = await probe_self_test(browser, site)
                if args.max_other_cpu < 1:
                    await wait_until_quiet(args.max_other_cpu, args.quiet_wait_s)
                before, started = cpu_snapshot(), time.perf_counter()
                costs = await measure_costs(browser, site, args.cost_iterations)
                costs_other_cpu = cpu_share(before, cpu_snapshot(), time.perf_counter() - started)
                for round_no in range(args.rounds):
                    shift = round_no % len(designs)
                    order = designs[shift:] + designs[:shift]  # rotate to spread drift over designs
                    for slots in args.slots:
                        for design in order:
                            result = await run_quietly(browser, site, design, slots, self_test.fresh_history, args)
                            results[(design, slots)].append(result)
                            _log(
                                f"round {round_no + 1}/{args.rounds} {design:<12} N={slots}: "
                                f"{result.pages_per_s:6.1f} pages/s, errors {result.errors}, "
                                f"other processes' CPU {result.other_cpu:.0%}, "
                                f"leaks {[sorted(c) for c in result.isolation]}"
                            )
            finally:
                await browser.close()
    finally:
        site.stop()
    print_report(results, designs, args.slots, costs, costs_other_cpu, self_test, args)
    return {
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "costs_ms": costs,
        "self_test": asdict(self_test),
        "runs": [asdict(r) | {"pages_per_s": r.pages_per_s} for runs in results.values() for r in runs],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=200, help="timed page loads per run (default 200)")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4], help="slot counts (default 1 4)")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every run, designs rotated (default 3)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed loads before each run (default 20)")
    parser.add_argument(
        "--designs",
        nargs="+",
        choices=list(DESIGNS),
        default=list(DESIGNS),
        help="designs to compare (baseline is needed for the ratio)",
    )
    parser.add_argument(
        "--cost-iterations", type=int, default=30, help="iterations for the bare new_context/close costs (default 30)"
    )
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="pause per client between requests; 0 = saturated (default 0)"
    )
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.1,
        help="repeat a run when processes outside the benchmark used more than this share "
        "of the CPU meanwhile, after waiting for quiet; 1 = never (default 0.1)",
    )
    parser.add_argument("--retries", type=int, default=3, help="repeats of a disturbed run (default 3)")
    parser.add_argument(
        "--quiet-wait-s", type=float, default=600, help="longest wait for a quiet machine before a run (default 600)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write raw results as JSON (e.g. bench/results/isolation.json)"
    )
    args = parser.parse_args(argv)
    if args.pages < 1 or args.rounds < 1 or min(args.slots) < 1:
        parser.error("--pages, --rounds and --slots must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payload = asyncio.run(main_async(args))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1))
        _log(f"raw results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
