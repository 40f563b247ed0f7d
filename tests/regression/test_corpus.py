"""The regression corpus replays offline and matches its snapshots (``tests/regression/corpus.py``
records it; ``browser-service replay --into fixtures/recordings`` runs the same check by hand)."""

from __future__ import annotations

import pytest

from browser_service.drift import Comparison
from browser_service.testing import recordings
from tests.regression.corpus import CORPUS, RECORDINGS


def test_the_corpus_is_recorded() -> None:
    assert sorted(p.values[0] for p in recordings(RECORDINGS)) == sorted(CORPUS)


@pytest.mark.parametrize("name", recordings(RECORDINGS))
def test_recording_replays_as_recorded(replay_recording: object, name: str) -> None:
    result: Comparison = replay_recording(name)  # type: ignore[operator]
    assert result.passed, result.report()
    assert result.misses == []
