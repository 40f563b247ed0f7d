"""Throughput, latency and memory of the service against plain Playwright on the same local pages.

    .venv/bin/python bench/throughput.py [--pages 100] [--slots 8] [--concurrency 1 8] [--rounds 3]

Serves --pages static articles and --pages JavaScript-rendered articles (half render from an
inline script as the page loads, half from a JSON API call after load) on 127.0.0.1, then measures,
at each concurrency level, in this one run:

* plain Playwright: one browser launched with Playwright's own flags, --slots reused tabs in one
  context (as many tabs as the service has slots), ``goto(wait_until="load")`` + ``content()`` — no
  isolation, no extraction, no waiting for content that arrives after ``load``;
* plain Playwright networkidle (JS pages): the same with ``wait_until="networkidle"``, Playwright's
  own way to wait for content that arrives after ``load`` (no request for 500 ms) — the question
  the service's settle wait answers;
* Playwright ctx/tab: the same with one context per tab — the slot layout an isolating pool needs,
  but never cleaned; separate contexts alone cost Chromium much of its throughput;
* ctx/tab+flags: the same launched with the service's flags (renderer reuse, its feature list,
  software compositing, …) — still never cleaned, so not isolated between the pages a tab loads:
  the ceiling;
* ctx/tab+flags+blank: the same, each tab sent to ``about:blank`` after its page (in the
  background, as the service cleans a slot after the lease) — the step every pool that isolates
  leases has to take, since a document has to be gone before its state can be cleared: the
  reference for the service (the "vs ref" column), with no clearing, no settle wait and no
  extraction (but, done plainly, ``goto`` + ``content()`` and a ``goto`` to ``about:blank``: the
  service, reading a page in one call, can beat it);
* ``render=browser`` through ``Fetcher.fetch``: isolated slots cleaned after every lease, the
  settle wait, extraction; on JS pages also with ``wait_until="load"``, which a caller sends to
  skip the settle wait (as plain Playwright does, so content that arrives after ``load`` can be
  missed: see the captured column);
* ``render=auto`` through ``Fetcher.fetch``: HTTP first, the browser only when the page needs it.

With ``--rounds`` every row runs that many times, the rows taking turns, and the table shows medians
and the range of each ratio over the rounds (this 2-core VM moves ±25 % between minutes). For each:
pages/s, p50/p95 latency, ratios to plain Playwright and to the reference, the share of pages
whose article text was really captured, the peak RSS of this process and its children (Chromium),
and the CPU each page cost this process (the client or the service, and the origin server's
threads) and its children (the Playwright driver and Chromium): on this 2-core machine concurrency 8
is CPU-bound, so pages/s there is about 2000 ms / (CPU ms per page).
Targets (issue 2): browser on JS pages ≥ 0.8× plain Playwright; auto on static pages ≥ 3×.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import psutil
from playwright.async_api import Page, async_playwright

from browser_service.chromium import IGNORED_DEFAULT_ARGS, launch_args, locate
from browser_service.contract import FetchRequest
from browser_service.fetcher import Fetcher
from browser_service.settings import Settings

WORDS = tuple(
    "harbour tide lantern keeper granite beacon channel current reef signal compass voyage anchor "  # noqa: SIM905
    "ledger winter rigging halyard mooring pilot estuary headland fog bell buoy chart sounding".split()
)


def article_text(i: int) -> list[str]:
    """Five deterministic paragraphs; the marker sentence proves the article was captured."""
    paragraphs = []
    for p in range(5):
        words = [WORDS[(i * 7 + p * 13 + k * 3) % len(WORDS)] for k in range(60)]
        paragraphs.append(" ".join(words).capitalize() + ".")
    paragraphs.append(f"Marker sentence for article number {i}.")
    return paragraphs


def marker(i: int) -> str:
    return f"Marker sentence for article number {i}."


NAV = "<nav>" + " | ".join(f"<a href='/section/{k}'>Section {k}</a>" for k in range(12)) + "</nav>"
FOOT = "<footer><p>Copyright The Bench Gazette.</p><a href='/privacy'>Privacy</a></footer>"


def static_page(i: int) -> str:
    body = "".join(f"<p>{p}</p>" for p in article_text(i))
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Article {i}</title></head><body>"
        f"<header>{NAV}</header><main><article><h1>Article {i}</h1>{body}</article></main>{FOOT}"
        "<script>window.analytics = true;</script></body></html>"
    )


def js_page(i: int) -> str:
    if i % 2 == 0:  # rendered by an inline script as the page loads
        paragraphs = "".join(f"<p>{p}</p>" for p in article_text(i)).replace("'", "\\'")
        script = (
            "document.addEventListener('DOMContentLoaded', function () {"
            f"document.getElementById('root').innerHTML = '<article><h1>Article {i}</h1>{paragraphs}</article>';"
            "});"
        )
    else:  # rendered from an API call
        script = (
            f"fetch('/api/{i}.json').then(r => r.json()).then(d => {{"
            "document.getElementById('root').innerHTML = '<article><h1>' + d.title + '</h1>' +"
            " d.paragraphs.map(p => '<p>' + p + '</p>').join('') + '</article>'; });"
        )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>App {i}</title></head><body>"
        f"<header>{NAV}</header><div id='root'></div>{FOOT}<script>{script}</script></body></html>"
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm holds
        # the body until the client's delayed ACK (~40 ms on Linux) — a stall no real server has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        import json

        kind, _, rest = self.path.strip("/").partition("/")
        number = int(rest.split(".")[0]) if rest.split(".")[0].isdigit() else -1
        if kind == "static" and number >= 0:
            body, ctype = static_page(number), "text/html; charset=utf-8"
        elif kind == "js" and number >= 0:
            body, ctype = js_page(number), "text/html; charset=utf-8"
        elif kind == "api" and number >= 0:
            body = json.dumps({"title": f"Article {number}", "paragraphs": article_text(number)})
            ctype = "application/json"
        else:
            body, ctype = "not found", "text/plain"
        data = body.encode()
        self.send_response(200 if number >= 0 else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class Result:
    name: str
    pages: str
    concurrency: int
    throughput: float
    p50_ms: float
    p95_ms: float
    captured: float
    peak_rss_mb: float
    cpu_own_ms: float = 0.0  # CPU per page of this process: the client or the service (and the origin server)
    cpu_browser_ms: float = 0.0  # CPU per page of its children: the Playwright driver and Chromium
    baseline: float | None = None
    per_tab: float | None = None


class MemoryWatch:
    """Peak RSS of this process and all its children (the Playwright driver and Chromium)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just exited
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def drive(
    urls: list[str], concurrency: int, one: Callable[[int, str], Awaitable[bool]]
) -> tuple[float, list[float], float]:
    """Run ``one`` over the URLs with ``concurrency`` workers: (seconds, latencies, captured share)."""
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(urls):
        queue.put_nowait(item)
    latencies: list[float] = []
    captured = 0

    async def worker(slot: int) -> None:
        nonlocal captured
        while not queue.empty():
            _, url = queue.get_nowait()
            started = time.perf_counter()
            ok = await one(slot, url)
            latencies.append(time.perf_counter() - started)
            captured += ok

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in range(concurrency)))
    return time.perf_counter() - started, latencies, captured / len(urls)


def number_of(url: str) -> int:
    return int(url.rsplit("/", 1)[1].split(".")[0])


async def run_baseline(
    urls: list[str],
    concurrency: int,
    tabs: int,
    executable: str,
    warmup: list[str],
    *,
    per_tab_context: bool,
    service_flags: bool = False,
    blank_between: bool = False,
    wait_until: Literal["load", "networkidle"] = "load",
) -> Result:
    async with async_playwright() as pw:
        with MemoryWatch() as memory:
            # Playwright's own launch flags, as a user's script would have them, unless
            # ``service_flags``: then also every flag the service launches with (chromium.py: renderer
            # reuse, its feature list, software compositing …), which make Chromium itself cheaper per
            # page. Not for the one-context layout, where --renderer-process-limit would put all tabs
            # in one renderer.
            args = launch_args() if service_flags else []
            ignored = list(IGNORED_DEFAULT_ARGS) if service_flags else None
            browser = await pw.chromium.launch(executable_path=executable, args=args, ignore_default_args=ignored)
            count = max(tabs, concurrency)
            if per_tab_context:  # the slot layout an isolating pool needs
                pages = [await (await browser.new_context()).new_page() for _ in range(count)]
            else:
                context = await browser.new_context()
                pages = [await context.new_page() for _ in range(count)]
            free: asyncio.Queue[Page] = asyncio.Queue()
            for page in pages:
                free.put_nowait(page)
            cleaning: set[asyncio.Task[None]] = set()

            async def to_blank(page: Page) -> None:
                await page.goto("about:blank")
                free.put_nowait(page)

            async def one(slot: int, url: str) -> bool:
                page = await free.get()
                await page.goto(url, wait_until=wait_until)
                captured = marker(number_of(url)) in await page.content()
                if blank_between:
                    # The least any pool that isolates leases must do: end the previous document
                    # (its scripts, its unload handlers) before its state can be cleared. Done after
                    # the answer, as the service cleans a slot after the lease; the tab is free again
                    # when it is blank.
                    task = asyncio.ensure_future(to_blank(page))
                    cleaning.add(task)
                    task.add_done_callback(cleaning.discard)
                else:
                    free.put_nowait(page)
                return captured

            await drive(warmup, concurrency, one)
            seconds, latencies, captured, cpu = await measured(urls, concurrency, one)
            await asyncio.gather(*cleaning)
            await browser.close()
    if not per_tab_context:
        name = "plain Playwright" + (f" {wait_until}" if wait_until != "load" else "")
    elif not service_flags:
        name = "Playwright ctx/tab"
    else:
        name = "ctx/tab+flags+blank" if blank_between else "ctx/tab+flags"
    return summarise(name, urls, concurrency, seconds, latencies, captured, memory.peak, cpu)


async def run_service(
    render: str,
    urls: list[str],
    concurrency: int,
    slots: int,
    executable: str,
    warmup: list[str],
    *,
    wait_until: str | None = None,
) -> Result:
    with tempfile.TemporaryDirectory() as tmp, MemoryWatch() as memory:
        settings = Settings(
            allow=["127.0.0.0/8"],
            pool_size=max(slots, concurrency),
            # Every bench page is on one local host: the per-host politeness limit (4 by default)
            # would hold the service below the baselines' concurrency, which have no such limit.
            host_concurrency=max(slots, concurrency),
            queue_size=1000,
            recycle_after=100_000,
            chromium_path=executable,
            cache_dir=Path(tmp),
        )
        async with Fetcher(settings) as fetcher:
            await fetcher.start(launch_browser=True)

            fields: dict[str, object] = {"render": render, "formats": ["markdown"]}
            if wait_until is not None:  # instead of the default settle wait
                fields["wait_until"] = wait_until

            async def one(slot: int, url: str) -> bool:
                response = await fetcher.fetch(FetchRequest.model_validate({"url": url, **fields}))
                return response.ok and marker(number_of(url)) in (response.markdown or "")

            await drive(warmup, concurrency, one)
            seconds, latencies, captured, cpu = await measured(urls, concurrency, one)
    name = f"service render={render}" + (f" {wait_until}" if wait_until else "")
    return summarise(name, urls, concurrency, seconds, latencies, captured, memory.peak, cpu)


def cpu_seconds() -> tuple[float, float]:
    """CPU time used so far by this process and by its live children (the driver and Chromium)."""
    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    children = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that just exited
            children += sum(child.cpu_times()[:2])
    return own, children


async def measured(
    urls: list[str], concurrency: int, one: Callable[[int, str], Awaitable[bool]]
) -> tuple[float, list[float], float, tuple[float, float]]:
    """:func:`drive` and the CPU it cost per page, (this process, its children) in ms."""
    own, children = cpu_seconds()
    seconds, latencies, captured = await drive(urls, concurrency, one)
    own_after, children_after = cpu_seconds()
    per_page = ((own_after - own) * 1000 / len(urls), (children_after - children) * 1000 / len(urls))
    return seconds, latencies, captured, per_page


def summarise(
    name: str,
    urls: list[str],
    concurrency: int,
    seconds: float,
    latencies: list[float],
    captured: float,
    peak: int,
    cpu: tuple[float, float],
) -> Result:
    ordered = sorted(latencies)
    return Result(
        name=name,
        pages="JS" if "/js/" in urls[0] else "static",
        concurrency=concurrency,
        throughput=len(urls) / seconds,
        p50_ms=statistics.median(ordered) * 1000,
        p95_ms=ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000,
        captured=captured,
        peak_rss_mb=peak / 2**20,
        cpu_own_ms=cpu[0],
        cpu_browser_ms=cpu[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=100, help="pages of each kind (static, JS)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--slots", type=int, default=8, help="browser slots of the service = tabs of the baseline")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of every row, taking turns; the table shows medians and ranges"
    )
    args = parser.parse_args()
    asyncio.run(run(args, locate(Settings().chromium_path)))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(ratios: list[float]) -> str:
    """``0.65x (0.61-0.70)``: the median ratio and its range over the rounds."""
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}x"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


async def one_round(
    args: argparse.Namespace, executable: str, pages: list[str], warm: list[str], concurrency: int, static: list[str]
) -> list[Result]:
    """Every row once, on one kind of page at one concurrency; ratios against this round's own runs."""
    results = []
    baseline = await run_baseline(pages, concurrency, args.slots, executable, warm, per_tab_context=False)
    results.append(baseline)
    if pages is not static:
        # What Playwright itself offers for content that arrives after load (the service's settle
        # wait answers the same question): no network for 500 ms.
        idle = await run_baseline(
            pages, concurrency, args.slots, executable, warm, per_tab_context=False, wait_until="networkidle"
        )
        idle.baseline = baseline.throughput
        results.append(idle)
    per_tab = await run_baseline(pages, concurrency, args.slots, executable, warm, per_tab_context=True)
    per_tab.baseline = baseline.throughput
    results.append(per_tab)
    ceiling = await run_baseline(
        pages, concurrency, args.slots, executable, warm, per_tab_context=True, service_flags=True
    )
    ceiling.baseline = baseline.throughput
    results.append(ceiling)
    reference = await run_baseline(
        pages, concurrency, args.slots, executable, warm, per_tab_context=True, service_flags=True, blank_between=True
    )
    reference.baseline = baseline.throughput
    results.append(reference)
    for render, wait_until in (("browser", None), ("browser", "load"), ("auto", None)):
        if wait_until is not None and pages is static:
            continue
        result = await run_service(render, pages, concurrency, args.slots, executable, warm, wait_until=wait_until)
        result.baseline = baseline.throughput
        result.per_tab = reference.throughput
        results.append(result)
    return results


async def run(args: argparse.Namespace, executable: str) -> None:

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    static = [f"{base}/static/{i}.html" for i in range(args.pages)]
    js = [f"{base}/js/{i}.html" for i in range(args.pages)]
    warm_static = [f"{base}/static/{i}.html" for i in range(10_000, 10_000 + args.warmup)]
    warm_js = [f"{base}/js/{i}.html" for i in range(10_000, 10_000 + args.warmup)]

    rounds: dict[tuple[str, str, int], list[Result]] = {}  # every round's result of one row, in order
    for concurrency in args.concurrency:
        for pages, warm in ((js, warm_js), (static, warm_static)):
            # The rows take turns, round after round: a slow minute of this shared machine then
            # lowers one round of every row, not every round of one row.
            for _ in range(args.rounds):
                for result in await one_round(args, executable, pages, warm, concurrency, static):
                    rounds.setdefault((result.name, result.pages, result.concurrency), []).append(result)
    server.shutdown()

    print(
        f"\n{'engine':<30}{'pages':<8}{'conc':>5}{'pages/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'vs base':>21}{'vs ref':>21}{'captured':>10}{'peak RSS MB':>13}{'CPU ms/page py+browser':>24}"
    )
    for (name, kind, concurrency), results in rounds.items():
        print(
            f"{name:<30}{kind:<8}{concurrency:>5}{median(r.throughput for r in results):>9.1f}"
            f"{median(r.p50_ms for r in results):>9.0f}{median(r.p95_ms for r in results):>9.0f}"
            f"{spread([r.throughput / r.baseline for r in results if r.baseline] or [1.0]):>21}"
            f"{spread([r.throughput / r.per_tab for r in results if r.per_tab]):>21}"
            f"{min(r.captured for r in results):>9.0%}{max(r.peak_rss_mb for r in results):>13.0f}"
            f"{median(r.cpu_own_ms for r in results):>14.1f} + {median(r.cpu_browser_ms for r in results):>6.1f}"
        )
    print(
        f"\nmedians over {args.rounds} rounds (ratios: median, and min-max over the rounds, each against the "
        "baseline of its own round); captured: the lowest round; RSS: the highest; CPU per page: this process "
        "(client or service, and the origin server's threads) + its children (driver and Chromium), medians."
    )
    print(
        f"\n{args.pages} pages of each kind, {args.slots} slots/tabs; reproduce: .venv/bin/python "
        f"bench/throughput.py --pages {args.pages} --slots {args.slots} "
        f"--concurrency {' '.join(map(str, args.concurrency))} --rounds {args.rounds}"
    )


if __name__ == "__main__":
    main()
