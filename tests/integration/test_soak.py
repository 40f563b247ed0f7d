"""A short soak in CI (the full one: ``bench/soak.py --fetches 5000``): 300 browser fetches through
one service; every answer as expected, file descriptors back where they started.

Memory growth is reported, not asserted, here: 300 fetches are too few for a stable growth figure
(the 15 % limit is judged by the full run).
"""

from __future__ import annotations

import pytest

from bench.soak import soak


@pytest.mark.timeout(300)
async def test_short_soak() -> None:
    result = await soak(fetches=300, concurrency=4, pool=2)
    print("\n" + result.table())
    assert result.failures == 0
    assert result.fds_end <= result.fds_start
    assert len(result.samples_mb) >= 9
