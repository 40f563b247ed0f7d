"""Record a site through the real pipeline, and run a recording again offline.

Both run the requests one after another on a fresh :class:`Fetcher` with an empty cache of its own
(in a temporary directory), so breakers, politeness and the cache start from nothing in both and a
replay meets the pipeline in the state the recording did. The settings that shape an answer (user
agent, size limits, waits, retries, the allow list) are stored with the recording and pinned when
it replays, whatever the machine's environment says.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as dist
from pathlib import Path
from typing import Any

from browser_service.chromium import DEFAULT_USER_AGENT
from browser_service.contract import CONTRACT_VERSION, FetchRequest, FetchResponse
from browser_service.drift import Comparison, compare
from browser_service.fetcher import Fetcher
from browser_service.recording import Metadata, Recording, normalise
from browser_service.replay import RecordTape, ReplayTape
from browser_service.settings import Settings
from extractors import EXTRACTOR_VERSION

#: Settings that shape an answer: recorded, and pinned when replaying.
PINNED = (
    "user_agent",
    "allow",
    "max_bytes",
    "max_redirects",
    "settle_cap_ms",
    "settle_quiet_ms",
    "challenge_wait_ms",
    "respect_robots",
    "retry_attempts",
    "max_screenshot_bytes",
    "browser_route_checks",
    "breaker_window",
    "breaker_min_calls",
    "breaker_failure_rate",
    "breaker_open_s",
    "breaker_half_open_calls",
    "host_concurrency",
    "max_retry_after_s",
)
#: Where recordings live unless --into says otherwise.
DEFAULT_DIR = Path("fixtures/recordings")


@dataclass
class Replayed:
    """What a replay answered, and what it asked for that the recording lacks."""

    recording: Recording
    responses: list[FetchResponse]
    misses: list[str] = field(default_factory=list)


def _versions(fetcher: Fetcher | None = None) -> dict[str, str]:
    versions = {"contract": CONTRACT_VERSION, "extractor": EXTRACTOR_VERSION}
    for name in ("browser-service", "playwright"):
        with contextlib.suppress(dist.PackageNotFoundError):
            versions[name] = dist.version(name)
    if fetcher is not None and fetcher.pool.health().browser_version:
        versions["browser"] = str(fetcher.pool.health().browser_version)
    return versions


async def record(
    requests: Sequence[FetchRequest],
    name: str,
    into: Path = DEFAULT_DIR,
    *,
    settings: Settings | None = None,
    images: bool = False,
) -> tuple[Recording, list[FetchResponse]]:
    """Fetch ``requests`` live, recording every exchange, into ``into/name`` (replacing it)."""
    base = settings or Settings()
    pinned = {"user_agent": base.user_agent or DEFAULT_USER_AGENT}
    recording = Recording(Path(into) / name)
    with tempfile.TemporaryDirectory(prefix="bs-record-cache-") as tmp:
        run_settings = base.model_copy(update={"cache_dir": Path(tmp), **pinned})
        tape = RecordTape(max_bytes=run_settings.max_bytes, images=images)
        try:
            async with Fetcher(run_settings, tape=tape) as fetcher:
                responses = [await fetcher.fetch(r) for r in requests]
                versions = _versions(fetcher)
            # Closed: every context has written its HAR.
            if recording.path.exists():
                shutil.rmtree(recording.path)
            tape.save(recording)
        finally:
            tape.close()
    recording.write_metadata(
        Metadata(
            name=name,
            recorded_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
            versions=versions,
            settings={k: getattr(run_settings, k) for k in PINNED},
            requests=[r.model_dump(mode="json", exclude_defaults=True) for r in requests],
            dns=tape.dns,
            images=images,
        )
    )
    recording.write_snapshot(responses)
    return recording, responses


def replay_settings(meta: Metadata, cache_dir: Path, base: Settings | None = None) -> Settings:
    """The settings of a replay: the machine's, with the recording's pinned over them."""
    pinned: dict[str, Any] = {k: v for k, v in meta.settings.items() if k in PINNED}
    return (base or Settings()).model_copy(update={**pinned, "cache_dir": cache_dir})


@contextlib.asynccontextmanager
async def replaying(recording: Recording, *, settings: Settings | None = None) -> AsyncIterator[Fetcher]:
    """A started Fetcher that serves only from ``recording`` (its tape: ``fetcher.tape``)."""
    meta = recording.metadata()
    with tempfile.TemporaryDirectory(prefix="bs-replay-") as tmp:
        tape = ReplayTape(recording)
        async with Fetcher(replay_settings(meta, Path(tmp), settings), tape=tape) as fetcher:
            yield fetcher


async def replay(recording: Recording, *, settings: Settings | None = None) -> Replayed:
    """Run the recording's requests again, offline."""
    async with replaying(recording, settings=settings) as fetcher:
        responses = [await fetcher.fetch(r) for r in recording.metadata().fetch_requests()]
        tape = tape_of(fetcher)
    return Replayed(recording, responses, tape.all_misses())


def tape_of(fetcher: Fetcher) -> ReplayTape:
    tape = fetcher.pool.tape
    assert isinstance(tape, ReplayTape), "not a replaying Fetcher"
    return tape


async def check(
    recording: Recording, *, threshold: float = 0.9, update: bool = False, settings: Settings | None = None
) -> Comparison:
    """Replay ``recording`` and compare with its snapshot; ``update`` writes the new answers as the snapshot."""
    replayed = await replay(recording, settings=settings)
    actual = [normalise(r) for r in replayed.responses]
    comparison = compare(recording.name, recording.snapshot(), actual, threshold=threshold, misses=replayed.misses)
    if update and comparison.changed:
        recording.write_snapshot(replayed.responses)
        comparison.updated = True
    return comparison
