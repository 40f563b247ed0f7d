"""Shared fixtures: the fixture site on 127.0.0.1 and settings that allow only loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_service.settings import Settings
from tests.redis_server import RedisServer
from tests.site import FixtureServer


@pytest.fixture(scope="session")
def site() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.close()


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Test settings: the fixture site's loopback range allowed, nothing else."""
    values: dict[str, object] = {
        "allow": ["127.0.0.0/8"],
        "pool_size": 2,
        "queue_size": 8,
        "cache_dir": tmp / "cache",
        "settle_cap_ms": 4000,
        # Tests share one fixture host; a breaker that opened in one test would fail the next.
        # The breaker tests set their own thresholds (tests/integration/test_failures.py).
        "breaker_window": 1000,
        "breaker_min_calls": 1000,
        "retry_backoff_ms": 20,
        # The watchdog's background checks would take idle slots aside at moments no test chooses;
        # tests/integration/test_observability.py turns it on (or calls check()) where it is tested.
        "heartbeat_interval_s": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("svc"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session's shared-state tests (each test flushes what it uses)."""
    if shutil.which("redis-server") is None:  # a failure, not a skip: a skipped suite would pass CI unseen
        pytest.fail("redis-server is not installed: run scripts/setup --dev (it installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def pytest_configure(config: pytest.Config) -> None:
    """The recordings plugin, as an installed browser-service registers it (entry point ``pytest11``);
    registered here too for a checkout whose installed metadata predates it. And pytest's own
    ``pytester``, for the plugin's tests."""
    import browser_service.testing as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "browser_service")
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
