"""Soak: thousands of browser fetches through one service; memory and file descriptors must stay flat.

    .venv/bin/python bench/soak.py --fetches 5000 --concurrency 4 --pool 4

Pages are the fixture site's (tests/site.py) rendered with ``render=browser``: JS articles, static
pages, a storage-heavy page, 404s. After a warm-up (the first 10 % of fetches) the resident memory of
this process plus every child (the Playwright driver, Chromium and its renderers) is sampled 50
times; the run passes when the mean of the last fifth of the samples is < 15 % above the mean of
the first fifth (memory is a sawtooth over each browser's life: see ``SoakResult.growth``) and the
open file descriptors show no upward trend (the fewest held in the last fifth of the samples is no
more than the most in the first fifth; the idle counts at start and end are listed by kind). Exit
status 1 otherwise. The browser is recycled every ``BROWSER_SERVICE_RECYCLE_AFTER`` pages (500) as in
production, so this also soaks recycling. tests/integration/test_soak.py runs a short version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fixture site lives in tests/

from browser_service.contract import FetchRequest
from browser_service.fetcher import Fetcher
from tests.conftest import make_settings
from tests.site import FixtureServer

PATHS = ["/js-article?delay=20", "/article.html", "/storage.html", "/no-such-page", "/long"]
GROWTH_LIMIT = 0.15
#: Chromium opens at most 32 connections per proxy server: more open tunnels would be a leak.
MAX_TUNNELS = 32


def rss_mb() -> float:
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_kinds() -> collections.Counter[str]:
    """Open descriptors by what they are: socket, pipe, anon_inode:[eventpoll], or a file path."""
    kinds: collections.Counter[str] = collections.Counter()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            kinds[target.split(":[")[0] if ":[" in target else target] += 1
    return kinds


@dataclass
class SoakResult:
    fetches: int
    seconds: float
    failures: int
    samples_mb: list[float] = field(default_factory=list)
    #: Open descriptors at each memory sample (requests in flight: compared fifth against fifth).
    samples_fds: list[int] = field(default_factory=list)
    fds_start: int = 0
    fds_end: int = 0
    #: Connections open through the egress proxy at each count: Chromium's keep-alive connections,
    #: two sockets each in this process; they come and go with the browser, not with the fetches.
    tunnels_start: int = 0
    tunnels_end: int = 0
    fd_change: dict[str, int] = field(default_factory=dict)
    recycles: int = 0

    @property
    def growth(self) -> float:
        """The mean of the last fifth of the samples against the mean of the first fifth.

        Memory is a sawtooth — Chromium grows over its ``recycle_after`` pages, then is relaunched —
        so two single samples compare phases of that cycle, not a trend. Each fifth of the measured
        run spans at least one browser lifetime at the default sizes (5,000 fetches, recycle every
        500), so the two means compare like with like.
        """
        if len(self.samples_mb) < 5:
            return 0.0
        fifth = len(self.samples_mb) // 5
        first, last = self.samples_mb[:fifth], self.samples_mb[-fifth:]
        return (sum(last) / len(last)) / (sum(first) / len(first)) - 1

    @property
    def fds_flat(self) -> bool:
        """No upward trend: the floor of the last fifth of the samples is no higher than the top of the
        first — a leak raises the floor; a sample taken while a few more requests or keep-alive
        connections are open (+3 for four samples in a row, then back, on a loaded test machine)
        does not.

        Two idle counts alone can mislead: just after a browser recycle Chromium holds no
        keep-alive connection through the egress proxy (two sockets each), a while later it holds
        a few — a step that comes and goes with the browser's life, not with the number of fetches.
        """
        if len(self.samples_fds) < 5:
            return self.fds_end <= self.fds_start
        fifth = len(self.samples_fds) // 5
        return min(self.samples_fds[-fifth:]) <= max(self.samples_fds[:fifth]) and self.tunnels_end <= MAX_TUNNELS

    def passed(self) -> bool:
        return self.failures == 0 and self.growth < GROWTH_LIMIT and self.fds_flat

    def table(self) -> str:
        return "\n".join(
            [
                f"fetches {self.fetches} in {self.seconds:.0f} s ({self.fetches / self.seconds:.1f}/s); "
                f"unexpected failures {self.failures}; browser recycles {self.recycles}",
                "memory (service + Chromium) after warm-up, MB, every tenth: "
                + " ".join(f"{m:.0f}" for m in self.samples_mb[:: max(1, len(self.samples_mb) // 10)]),
                f"peak {max(self.samples_mb, default=0):.0f} MB; growth, last fifth against first fifth of "
                f"{len(self.samples_mb)} samples: {self.growth:+.1%} (limit +{GROWTH_LIMIT:.0%})",
                f"file descriptors {self.fds_start} -> {self.fds_end}"
                + (f" ({', '.join(f'{k} {v:+d}' for k, v in self.fd_change.items())})" if self.fd_change else "")
                + f"; connections open through the egress proxy {self.tunnels_start} -> {self.tunnels_end}"
                " (Chromium's keep-alive connections, two sockets each)",
                "file descriptors while fetching, every tenth sample: "
                + " ".join(str(n) for n in self.samples_fds[:: max(1, len(self.samples_fds) // 10)])
                + f" — {'flat' if self.fds_flat else 'GROWING'} (last fifth's max against the first fifth's)",
            ]
        )


async def soak(fetches: int, concurrency: int, pool: int) -> SoakResult:
    site = FixtureServer().start()
    try:
        settings = make_settings(Path(tempfile.mkdtemp(prefix="soak-")), pool_size=pool, queue_size=fetches)
        async with Fetcher(settings) as service:
            await service.start(launch_browser=True)
            result = SoakResult(fetches=fetches, seconds=0.0, failures=0)
            warmup = max(1, fetches // 10)
            step = max(1, (fetches - warmup) // 50)
            started = time.monotonic()

            async def phase(numbers: range, sample: bool) -> None:
                counter = iter(numbers)

                async def worker() -> None:
                    for i in counter:
                        path = PATHS[i % len(PATHS)]
                        url = site.url(f"{path}{'&' if '?' in path else '?'}n={i}")
                        request = FetchRequest.model_validate({"url": url, "render": "browser", "max_age_s": 0})
                        response = await service.fetch(request)
                        if response.ok != (path != "/no-such-page"):
                            result.failures += 1
                        if sample and (i - warmup) % step == 0:
                            result.samples_mb.append(rss_mb())
                            result.samples_fds.append(fds())

                await asyncio.gather(*(worker() for _ in range(concurrency)))
                await service.pool.drained()

            await phase(range(warmup), sample=False)
            result.fds_start = fds()  # measured between phases: no request in flight
            result.tunnels_start = service.pool.egress.open_tunnels
            kinds_start = fd_kinds()
            await phase(range(warmup, fetches), sample=True)
            result.seconds = time.monotonic() - started
            result.fds_end = fds()
            result.tunnels_end = service.pool.egress.open_tunnels
            kinds_end = fd_kinds()
            changed = sorted(k for k in kinds_start | kinds_end if kinds_end[k] != kinds_start[k])
            result.fd_change = {k: kinds_end[k] - kinds_start[k] for k in changed}
            result.recycles = service.pool.health().recycles
            return result
    finally:
        site.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetches", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(soak(args.fetches, args.concurrency, args.pool))
    print(result.table())
    print("PASS" if result.passed() else "FAIL")
    raise SystemExit(0 if result.passed() else 1)


if __name__ == "__main__":
    main()
