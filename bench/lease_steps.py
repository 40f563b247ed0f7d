"""What each step of a lease costs Chromium and the driver, on the throughput bench's JS pages.

    .venv/bin/python bench/lease_steps.py [--pages 100] [--slots 8] [--rounds 3] [--variants ...]

The pattern is bench/throughput.py's *reference*: one context per slot, launched with the service's
flags, each page read and then its tab sent to ``about:blank`` in the background (the least a pool
that isolates leases must do). Each variant adds steps the service could take per lease, and the
table shows pages/s and CPU per page (this process + its children: the Playwright driver and
Chromium) against the bare pattern of the same round. Concurrency is the slot count: on this 2-core
VM the run is CPU-bound, so CPU per page is what decides throughput (pages/s ≈ 2000 / CPU ms).

Steps (joined with ``+`` in a variant; ``bare`` is none):

* ``evaluate`` — read the page with Playwright's ``page.evaluate`` instead of ``Runtime.evaluate``
  over the page's CDP session (what engines/page_script.py does);
* ``init`` — the service's settle init script in every document;
* ``name`` — clear ``window.name`` with ``page.evaluate`` after the blank page committed;
* ``initname`` — clear it from an init script on the blank page instead (isolation.CLEAR_NAME);
* ``cookies`` — ``BrowserContext.clear_cookies``; ``storage`` — ``Storage.clearDataForOrigin``
  (all types) for the page's origin; ``cache`` — ``Network.clearBrowserCache``;
* ``headers`` — ``Response.all_headers`` (a round trip for the raw headers);
* ``events`` — listeners on the page's request events (the driver then sends them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page, Playwright, async_playwright
from throughput import Handler, drive, marker, measured, number_of

from browser_service.chromium import IGNORED_DEFAULT_ARGS, launch_args, locate
from browser_service.engines.settle import init_script
from browser_service.isolation import CLEAR_NAME
from browser_service.settings import Settings

READ = "() => ({html: document.documentElement.outerHTML, title: document.title})"
STEPS = ("evaluate", "init", "name", "initname", "cookies", "storage", "cache", "headers", "events")
DEFAULT = (
    "bare,evaluate,init,init+name,init+initname,init+cookies,init+storage,init+cache,"
    "init+cookies+storage+cache,init+headers,init+events"
)

Slot = tuple[BrowserContext, Page, CDPSession]


async def one_run(
    pw: Playwright, executable: str, urls: list[str], warm: list[str], steps: set[str], slots: int
) -> tuple[float, list[float], float, tuple[float, float]]:
    """One variant: (seconds, latencies, captured share, CPU ms per page of this process and its children)."""
    browser = await pw.chromium.launch(
        executable_path=executable, args=launch_args(), ignore_default_args=list(IGNORED_DEFAULT_ARGS)
    )
    free: asyncio.Queue[Slot] = asyncio.Queue()
    for _ in range(slots):
        context = await browser.new_context()
        if "init" in steps:
            await context.add_init_script(init_script(Settings().settle_cap_ms))
        if "initname" in steps:
            await context.add_init_script(CLEAR_NAME)
        page = await context.new_page()
        if "events" in steps:
            for event in ("request", "response", "requestfinished", "requestfailed"):
                page.on(event, lambda _: None)
        free.put_nowait((context, page, await context.new_cdp_session(page)))
    origin = urls[0].split("/js/")[0]
    cleaning: set[asyncio.Task[None]] = set()

    async def clean(slot: Slot) -> None:
        context, page, cdp = slot
        await page.goto("about:blank", wait_until="commit")
        calls: list[Any] = []
        if "cookies" in steps:
            calls.append(context.clear_cookies())
        if "storage" in steps:
            calls.append(cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"}))
        if "cache" in steps:
            calls.append(cdp.send("Network.clearBrowserCache"))
        if "name" in steps:
            calls.append(page.evaluate("window.name = ''"))
        await asyncio.gather(*calls)
        free.put_nowait(slot)

    async def one(_: int, url: str) -> bool:
        slot = await free.get()
        response = await slot[1].goto(url)
        if "headers" in steps and response is not None:
            await response.all_headers()
        if "evaluate" in steps:
            snapshot = await slot[1].evaluate(READ)
        else:
            answer = await slot[2].send("Runtime.evaluate", {"expression": f"({READ})()", "returnByValue": True})
            snapshot = answer["result"]["value"]
        task = asyncio.ensure_future(clean(slot))
        cleaning.add(task)
        task.add_done_callback(cleaning.discard)
        return marker(number_of(url)) in snapshot["html"]

    await drive(warm, slots, one)
    result = await measured(urls, slots, one)
    await asyncio.gather(*cleaning)
    await browser.close()
    return result


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a tab sent to about:blank while its page's API call was still being answered


async def run(args: argparse.Namespace, executable: str) -> None:
    variants = [name for name in args.variants.split(",") if name]
    for name in variants:
        unknown = set(name.split("+")) - set(STEPS) - {"bare"}
        if unknown:
            raise SystemExit(f"unknown step(s) {sorted(unknown)} in {name!r}; steps: {', '.join(STEPS)}")
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    urls = [f"{base}/js/{i}.html" for i in range(args.pages)]
    warm = [f"{base}/js/{i}.html" for i in range(10_000, 10_010)]
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in variants}
    async with async_playwright() as pw:
        for _ in range(args.rounds):  # the variants take turns, round after round
            for name in variants:
                steps = set(name.split("+")) - {"bare"}
                seconds, _, captured, cpu = await one_run(pw, executable, urls, warm, steps, args.slots)
                rows[name].append((len(urls) / seconds, cpu[0], cpu[1], captured))
    server.shutdown()
    base_cpu = statistics.median(r[1] + r[2] for r in rows[variants[0]])
    print(
        f"\n{'variant':<32}{'pages/s':>9}{'CPU ms/page py+browser':>26}{'total':>8}{f'vs {variants[0]}':>14}"
        f"{'read at load':>14}"
    )
    for name, results in rows.items():
        total = statistics.median(r[1] + r[2] for r in results)
        print(
            f"{name:<32}{statistics.median(r[0] for r in results):>9.1f}"
            f"{statistics.median(r[1] for r in results):>16.1f} + {statistics.median(r[2] for r in results):>6.1f}"
            f"{total:>8.1f}{total - base_cpu:>+13.1f}{min(r[3] for r in results):>13.0%}"
        )
    print(
        "\nread at load: the lowest share of pages whose article was there when read right at `load` (half the "
        "pages render theirs from an API call after it; the service's settle wait waits for it, this bench does not)"
    )
    print(
        f"medians over {args.rounds} rounds; {args.pages} JS pages, {args.slots} slots at concurrency {args.slots}; "
        f"reproduce: .venv/bin/python bench/lease_steps.py --pages {args.pages} --slots {args.slots} "
        f"--rounds {args.rounds} --variants {args.variants}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=DEFAULT, help="comma-separated; the first is the one compared against")
    args = parser.parse_args()
    asyncio.run(run(args, locate(Settings().chromium_path)))


if __name__ == "__main__":
    main()
