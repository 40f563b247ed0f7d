"""Soak: thousands of browser fetches through one service; memory and file descriptors must stay flat.

    .venv/bin/python bench/soak.py --fetches 5000 --concurrency 4 --pool 4

Pages are the fixture site's (tests/site.py) rendered with ``render=browser``: JS articles, static
pages, a storage-heavy page, 404s. After a warm-up (the first 10 % of fetches) the resident memory of
this process plus every child (the Playwright driver, Chromium and its renderers) is sampled at each
tenth; the run passes when the last sample is < 15 % above the first post-warm-up one and the open
file descriptors of this process end where they started. Exit status 1 otherwise. The browser is
recycled every ``BROWSER_SERVICE_RECYCLE_AFTER`` pages (500) as in production, so this also soaks
recycling. tests/integration/test_soak.py runs a short version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
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


def rss_mb() -> float:
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class SoakResult:
    fetches: int
    seconds: float
    failures: int
    samples_mb: list[float] = field(default_factory=list)
    fds_start: int = 0
    fds_end: int = 0
    recycles: int = 0

    @property
    def growth(self) -> float:
        return self.samples_mb[-1] / self.samples_mb[0] - 1 if len(self.samples_mb) >= 2 else 0.0

    def passed(self) -> bool:
        return self.failures == 0 and self.growth < GROWTH_LIMIT and self.fds_end <= self.fds_start

    def table(self) -> str:
        return "\n".join(
            [
                f"fetches {self.fetches} in {self.seconds:.0f} s ({self.fetches / self.seconds:.1f}/s); "
                f"unexpected failures {self.failures}; browser recycles {self.recycles}",
                "memory (service + Chromium) after warm-up, MB: " + " ".join(f"{m:.0f}" for m in self.samples_mb),
                f"growth {self.growth:+.1%} (limit +{GROWTH_LIMIT:.0%}); "
                f"file descriptors {self.fds_start} -> {self.fds_end}",
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
            step = max(1, (fetches - warmup) // 9)
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

                await asyncio.gather(*(worker() for _ in range(concurrency)))
                await service.pool.drained()

            await phase(range(warmup), sample=False)
            result.fds_start = fds()  # measured between phases: no request in flight
            await phase(range(warmup, fetches), sample=True)
            result.seconds = time.monotonic() - started
            result.fds_end = fds()
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
