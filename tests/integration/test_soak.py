"""A short soak in CI (the full one: ``bench/soak.py --fetches 5000``): 300 browser fetches through
one service; every answer as expected, file descriptors back where they started.

Memory growth is reported, not asserted, here: 300 fetches are too few for a stable growth figure
(the 15 % limit is judged by the full run).
"""

from __future__ import annotations

import pytest

from bench.soak import MAX_TUNNELS, SoakResult, soak


@pytest.mark.timeout(300)
async def test_short_soak() -> None:
    result = await soak(fetches=300, concurrency=4, pool=2)
    print("\n" + result.table())
    assert result.failures == 0
    # Descriptors show no upward trend while fetching, and end where they started but for the sockets
    # of the keep-alive connections Chromium holds through the egress proxy (bounded: MAX_TUNNELS).
    assert result.fds_flat
    assert result.fds_end - 2 * (result.tunnels_end - result.tunnels_start) <= result.fds_start
    assert result.tunnels_end <= MAX_TUNNELS
    assert len(result.samples_mb) >= 9


@pytest.mark.parametrize(
    ("samples", "flat"),
    [
        ([91] * 10 + [94] * 4 + [91], True),  # a few more connections open for a while, then closed
        ([91] * 5 + [92] * 5 + [93] * 5, False),  # the floor rises: descriptors leak
    ],
)
def test_a_descriptor_trend_is_the_floor_rising_not_a_passing_peak(samples: list[int], flat: bool) -> None:
    assert SoakResult(fetches=300, seconds=30, failures=0, samples_fds=samples, fds_start=91).fds_flat is flat
