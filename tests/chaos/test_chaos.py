"""The chaos suite, short version (the long one: ``python -m tests.chaos.run --requests 1000``).

Mixed requests against every fault of tests/chaos/origin.py, through the real API, at three times
the pool's concurrency, while Chromium is SIGKILLed every few seconds.
"""

from __future__ import annotations

import pytest

from tests.chaos.run import chaos


@pytest.mark.timeout(300)
async def test_every_request_answered_in_time_nothing_leaked() -> None:
    report = await chaos(requests=150, concurrency=6, pool=2, kill_every_s=4.0, seed=3)
    print("\n" + report.table())
    assert report.violations == []
    assert sum(report.outcomes.values()) == 150 and report.statuses.get(500, 0) == 0
    # The last kill may come after the last request: with no lease to relaunch it, it is not timed.
    assert report.kills >= 3 and len(report.recoveries_s) >= report.kills - 1
    assert report.leftover == {
        "in_use": 0,
        "queued": 0,
        "extra_pages": 0,
        "extra_contexts": 0,
        "browser_processes": 0,
        "extra_fds": 0,
    }
    # Every fault is represented, and healthy pages still come through between the kills.
    assert report.outcomes["ok"] > 0 and report.outcomes["timeout"] > 0
