"""The chaos run: mixed requests against the fault-injecting origin through the real API while the
browser is killed at random; every answer checked, everything counted.

    .venv/bin/python -m tests.chaos.run --requests 1000 --concurrency 8 --pool 4 --kill-every 5

Acceptance (also asserted, on a shorter run, by tests/chaos/test_chaos.py): every request gets
exactly one schema-valid answer within timeout_ms + 2 s, never an HTTP 500; capacity is back within
5 s of each kill; afterwards no page, context, browser process or file descriptor is left over.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from browser_service.contract import FetchResponse
from browser_service.fetcher import Fetcher
from tests.chaos.origin import ChaosOrigin
from tests.conftest import make_settings
from tests.integration.test_api import running

#: (path, render modes it is fetched with) — the mix of one run.
MIX: list[tuple[str, tuple[str, ...]]] = [
    ("/ok", ("auto", "http", "browser")),
    ("/js", ("auto", "browser")),
    ("/reset-mid-body", ("http", "browser")),
    ("/stall", ("http", "browser")),
    ("/drip", ("http", "browser")),
    ("/burst", ("auto", "browser")),
    ("/429", ("http",)),
    ("/bad-gzip", ("http", "browser")),
    ("/loop", ("http", "browser")),
    ("/endless", ("http", "browser")),
    ("/wrong-length", ("http", "browser")),
    ("/spin", ("browser",)),
    ("/popups", ("browser",)),
    ("/download", ("browser",)),
]
GRACE_S = 2.0
RECOVERY_LIMIT_S = 5.0


@dataclass
class Report:
    requests: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    worst_overshoot_s: float = -1e9
    violations: list[str] = field(default_factory=list)
    kills: int = 0
    recoveries_s: list[float] = field(default_factory=list)
    relaunches: int = 0
    leftover: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"requests {self.requests}; kills {self.kills}; browser relaunches {self.relaunches}"]
        lines.append("outcome                 count")
        for kind, count in self.outcomes.most_common():
            lines.append(f"  {kind:<20} {count:>6}")
        lat = sorted(self.latencies)
        if lat:
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            lines.append(f"latency p50 {p50:.2f} s, p99 {p99:.2f} s, max {lat[-1]:.2f} s")
        lines.append(f"worst overshoot of the deadline: {self.worst_overshoot_s:+.2f} s (allowed +{GRACE_S:.0f} s)")
        if self.recoveries_s:
            lines.append(
                f"capacity back after a kill: max {max(self.recoveries_s):.2f} s, "
                f"median {statistics.median(self.recoveries_s):.2f} s"
            )
        lines.append(f"HTTP statuses: {dict(sorted(self.statuses.items()))}")
        lines.append(f"left over after the run: {self.leftover}")
        lines.append(f"violations: {len(self.violations)}")
        lines.extend(f"  {v}" for v in self.violations[:20])
        return "\n".join(lines)


def _browser_processes() -> set[int]:
    me = psutil.Process()
    pids = set()
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            if "chrom" in child.name().lower() and child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
    return pids


async def _browsers_gone(before: set[int], limit_s: float = 5.0) -> int:
    """Chromium processes started by the run and still running ``limit_s`` after the service closed
    (renderers exit a moment after the browser process; polled for that state, not slept on).
    Browsers that were running before the run (another test's) are not the run's."""
    deadline = time.monotonic() + limit_s
    while (left := _browser_processes() - before) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return len(left)


async def chaos(requests: int, concurrency: int, pool: int, kill_every_s: float, seed: int = 1) -> Report:
    rng = random.Random(seed)
    report = Report(requests=requests)
    origin = ChaosOrigin(seed).start()
    fds_before = len(os.listdir("/proc/self/fd"))
    browsers_before = _browser_processes()
    settings = make_settings(
        Path(tempfile.mkdtemp(prefix="chaos-")),
        pool_size=pool,
        queue_size=requests,
        settle_cap_ms=1500,
        challenge_wait_ms=0,
        host_concurrency=concurrency,
        # The breaker would (rightly) stop sending to an origin this broken; the run wants every fault.
        breaker_window=1000,
        breaker_min_calls=1000,
    )
    try:
        async with running(settings) as (client, server):
            service: Fetcher = server.config.app.state.fetcher
            plan = []
            for _ in range(requests):
                path, renders = rng.choice(MIX)
                plan.append((path, rng.choice(renders), rng.choice((2000, 3000, 5000))))
            gate = asyncio.Semaphore(concurrency)
            done = asyncio.Event()

            async def one(i: int, path: str, render: str, timeout_ms: int) -> None:
                async with gate:
                    body = {
                        "url": origin.url(f"{path}?i={i}"),
                        "render": render,
                        "timeout_ms": timeout_ms,
                        "max_age_s": 0,
                        "allow_stale": False,
                    }
                    started = time.monotonic()
                    try:
                        answer = await client.post("/v1/fetch", json=body, timeout=timeout_ms / 1000 + 30)
                    except httpx.HTTPError as exc:
                        report.violations.append(f"{path} {render}: no answer ({type(exc).__name__})")
                        report.outcomes["(no answer)"] += 1
                        return
                    elapsed = time.monotonic() - started
                    report.latencies.append(elapsed)
                    report.statuses[answer.status_code] += 1
                    overshoot = elapsed - timeout_ms / 1000
                    report.worst_overshoot_s = max(report.worst_overshoot_s, overshoot)
                    if overshoot > GRACE_S:
                        report.violations.append(f"{path} {render}: {elapsed:.2f} s for a {timeout_ms} ms deadline")
                    if answer.status_code == 500:
                        report.violations.append(f"{path} {render}: HTTP 500 {answer.text[:200]}")
                    try:
                        parsed = FetchResponse.model_validate_json(answer.content)
                    except ValueError:
                        report.violations.append(f"{path} {render}: not a FetchResponse: {answer.text[:200]}")
                        report.outcomes["(invalid)"] += 1
                        return
                    report.outcomes["ok" if parsed.ok else parsed.error.kind.value if parsed.error else "?"] += 1

            async def killer() -> None:
                while not done.is_set():
                    try:
                        await asyncio.wait_for(done.wait(), kill_every_s * (0.5 + rng.random()))
                        return
                    except TimeoutError:
                        pass
                    health = service.pool.health()
                    if health.browser_pid is None or not health.browser_connected:
                        continue
                    launches = health.launches
                    os.kill(health.browser_pid, signal.SIGKILL)
                    report.kills += 1
                    killed_at = time.monotonic()
                    # Capacity is back when the relaunched browser is connected (the next lease starts it).
                    while not done.is_set():
                        now = service.pool.health()
                        if now.launches > launches and now.browser_connected:
                            report.recoveries_s.append(time.monotonic() - killed_at)
                            break
                        await asyncio.sleep(0.01)
                    if report.recoveries_s and report.recoveries_s[-1] > RECOVERY_LIMIT_S:
                        report.violations.append(f"capacity back only {report.recoveries_s[-1]:.2f} s after a kill")

            kill_task = asyncio.create_task(killer())
            await asyncio.gather(*(one(i, *step) for i, step in enumerate(plan)))
            done.set()
            await kill_task
            await service.pool.drained()
            health = service.pool.health()
            report.relaunches = health.restarts
            report.leftover = {
                "in_use": health.in_use,
                "queued": health.queued,
                # Open beyond the clean slots kept for reuse (idle slots on a killed browser are
                # replaced at their next lease, so fewer open than idle is fine).
                "extra_pages": max(0, service.pool.open_pages() - service.pool.idle_slots),
                "extra_contexts": max(0, service.pool.open_contexts() - service.pool.idle_slots),
            }
    finally:
        origin.close()
    report.leftover["browser_processes"] = await _browsers_gone(browsers_before)
    report.leftover["extra_fds"] = max(0, len(os.listdir("/proc/self/fd")) - fds_before)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=5.0, help="mean seconds between browser kills")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = asyncio.run(chaos(args.requests, args.concurrency, args.pool, args.kill_every, args.seed))
    print(report.table())
    raise SystemExit(1 if report.violations or any(report.leftover.values()) else 0)


if __name__ == "__main__":
    main()
