"""The fetch's deadline backstop keeps the typed timeout a stage was raising when it fired."""

from __future__ import annotations

import asyncio

import pytest

from browser_service.deadline import Deadline
from browser_service.errors import FetchTimeout
from browser_service.fetcher import _typed_cause


async def test_the_backstop_reports_the_stage_timeout_it_interrupted() -> None:
    deadline = Deadline(5)

    async def stage() -> None:
        try:
            raise deadline.timeout("wait_for", "'#never'")
        finally:
            await asyncio.Event().wait()  # clean-up that the backstop cuts short

    with pytest.raises(TimeoutError) as backstop:
        async with asyncio.timeout(0.01):
            await stage()
    cause = _typed_cause(backstop.value)
    assert isinstance(cause, FetchTimeout) and cause.phase == "wait_for"


async def test_without_a_typed_error_in_flight_there_is_none() -> None:
    with pytest.raises(TimeoutError) as backstop:
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()
    assert _typed_cause(backstop.value) is None
