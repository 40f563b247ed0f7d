"""pytest plugin: test against recorded sites, offline (registered as the ``pytest11`` entry point
``browser_service``, so installing browser-service is enough).

In a project's tests::

    from browser_service.testing import recordings

    @pytest.mark.parametrize("name", recordings("fixtures/recordings"))
    def test_recording_still_matches(replay_recording, name):
        result = replay_recording(name)           # replays offline, compares with the snapshot
        assert result.passed, result.report()     # the report: verdict, changed fields, markdown diff

    async def test_my_agent_tool(replay_fetcher):  # any async test runner (pytest-asyncio, anyio)
        async with replay_fetcher("article") as fetcher:   # a Fetcher serving only from the recording
            page = await fetcher.fetch(FetchRequest(url="http://127.0.0.1:8765/article.html"))

    async def test_through_the_api(replay_client):
        async with replay_client("article") as client:     # browser_service.client.AsyncClient, in-process app
            page = await client.fetch("http://127.0.0.1:8765/article.html")

Recordings are looked up in the ini option ``browser_service_recordings`` (default
``fixtures/recordings``, relative to the rootdir). ``--browser-service-update`` makes
``replay_recording`` write the new answers as the snapshots (and pass), like ``replay --update``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browser_service.recording import Recording, list_recordings

if TYPE_CHECKING:
    from browser_service.client import AsyncClient
    from browser_service.drift import Comparison
    from browser_service.fetcher import Fetcher

DEFAULT_DIR = "fixtures/recordings"


def recordings(directory: str | Path = DEFAULT_DIR) -> list[Any]:
    """Every recording under ``directory`` as pytest params (id: the name), for ``parametrize``."""
    return [pytest.param(r.name, id=r.name) for r in list_recordings(Path(directory))]


@contextlib.asynccontextmanager
async def replaying_fetcher(path: Path) -> AsyncIterator[Fetcher]:
    """A started :class:`Fetcher` that serves only from the recording at ``path``."""
    from browser_service.recorder import replaying

    async with replaying(_existing(path)) as fetcher:
        yield fetcher


@contextlib.asynccontextmanager
async def replaying_client(path: Path) -> AsyncIterator[AsyncClient]:
    """The Python client against an in-process app whose Fetcher serves only from the recording."""
    import httpx

    from browser_service.api import create_app
    from browser_service.client import AsyncClient

    async with replaying_fetcher(path) as fetcher:
        app = create_app(fetcher.settings, fetcher)
        async with AsyncClient("http://replay.invalid", transport=httpx.ASGITransport(app=app)) as client:
            yield client


def check_recording(path: Path, *, update: bool = False, threshold: float | None = None) -> Comparison:
    """Replay the recording at ``path`` and compare with its snapshot (blocking; safe in any test)."""
    from browser_service.recorder import check
    from browser_service.settings import Settings

    settings = Settings()
    limit = settings.drift_threshold if threshold is None else threshold
    work = check(_existing(path), threshold=limit, update=update, settings=settings)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop, whatever the test runs in
        return pool.submit(asyncio.run, work).result()


def _existing(path: Path) -> Recording:
    recording = Recording(path)
    if not recording.exists():
        raise FileNotFoundError(f"no recording at {path}")
    return recording


# --- the plugin -------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("browser_service_recordings", "Directory of browser-service recordings.", default=DEFAULT_DIR)
    parser.addoption(
        "--browser-service-update",
        action="store_true",
        help="replay_recording: accept the new answers as the recordings' snapshots.",
    )


@pytest.fixture
def browser_service_recordings(pytestconfig: pytest.Config) -> Path:
    """The recordings directory (ini ``browser_service_recordings``)."""
    return Path(pytestconfig.rootpath) / str(pytestconfig.getini("browser_service_recordings"))


@pytest.fixture
def replay_recording(pytestconfig: pytest.Config, browser_service_recordings: Path) -> Callable[[str], Comparison]:
    """``replay_recording(name)`` → the comparison of an offline replay with the snapshot."""
    update = bool(pytestconfig.getoption("--browser-service-update"))
    return lambda name: check_recording(browser_service_recordings / name, update=update)


@pytest.fixture
def replay_fetcher(
    browser_service_recordings: Path,
) -> Callable[[str], contextlib.AbstractAsyncContextManager[Fetcher]]:
    """``async with replay_fetcher(name) as fetcher``: a Fetcher serving only from the recording."""
    return lambda name: replaying_fetcher(browser_service_recordings / name)


@pytest.fixture
def replay_client(
    browser_service_recordings: Path,
) -> Callable[[str], contextlib.AbstractAsyncContextManager[AsyncClient]]:
    """``async with replay_client(name) as client``: the AsyncClient against an in-process app in replay mode."""
    return lambda name: replaying_client(browser_service_recordings / name)
