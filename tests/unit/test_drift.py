"""The comparison of a replay with its snapshot, and the normalisation of volatile fields (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from browser_service.contract import Attempt, FetchResponse
from browser_service.drift import LIVE_MAX_WORDS, compare, live_similarity, shingles, similarity, verdict
from browser_service.recording import normalise


def _answer(markdown: str = "# Title\n\nOne two three four.", **fields: object) -> dict[str, object]:
    response = FetchResponse(ok=True, url="http://a.test/", trace_id="x", markdown=markdown, title="Title")
    return normalise(response.model_copy(update=fields))


def test_volatile_fields_are_normalised() -> None:
    response = FetchResponse(
        ok=True,
        url="http://a.test/",
        trace_id="5f0c",
        fetched_at=datetime.now(UTC),
        duration_ms=88,
        age_s=12.5,
        attempts=[Attempt(engine="http", url="http://a.test/", outcome="ok", duration_ms=41)],
        warnings=["the page was still changing after 5012 ms (3 requests, 1 timers pending); read it as it was."],
    )
    data = normalise(response)
    assert data["trace_id"] == "-" and data["fetched_at"] is None and data["duration_ms"] is None
    assert data["age_s"] == 0.0 and data["attempts"][0]["duration_ms"] == 0 and "versions" not in data
    assert data["warnings"] == [
        "the page was still changing after N ms (3 requests, 1 timers pending); read it as it was."
    ]


def test_similarity() -> None:
    assert similarity("a b c d", "a b c d") == 1.0
    assert similarity("a b c d", "a b c") == 0.857
    assert similarity("a b", "c d") == 0.0
    assert similarity(None, None) == 1.0


def test_an_unchanged_replay_passes() -> None:
    result = compare("r", [_answer()], [_answer()])
    assert result.passed and not result.changed and result.report() == "PASS r (1 request)"


def test_a_changed_replay_reports_verdict_fields_and_diff() -> None:
    failed = FetchResponse.model_validate(
        {
            "ok": False,
            "url": "http://a.test/",
            "trace_id": "y",
            "error": {"kind": "captcha", "message": "m", "retryable": False, "vendor": "datadome"},
        }
    )
    result = compare("r", [_answer(), _answer()], [_answer("# Title\n\nOne two three five."), normalise(failed)])
    assert not result.passed and result.drifted is True  # the failed one has no text left: similarity 0
    assert verdict(normalise(failed)) == "captcha (datadome)"
    lines = result.report().splitlines()
    assert lines[0] == "FAIL r (2 requests): similarity 0.000 — LARGE DRIFT (below 0.9)"
    assert "    -One two three four." in lines and "    +One two three five." in lines
    assert "    verdict: ok → captcha (datadome)" in lines
    assert "    changed title: 'Title' → None" in lines


def test_a_different_number_of_answers_fails() -> None:
    result = compare("r", [_answer(), _answer()], [_answer()])
    assert not result.passed and "the snapshot has 2 answers, the replay gave 1" in result.report()


# --- live_similarity: the cheap measure for live fetches --------------------------------------------

STORY = " ".join(f"Sentence {i} tells the keeper's story of the tower and the lamp." for i in range(40))


def test_live_similarity_edge_cases() -> None:
    assert live_similarity(None, None) == live_similarity("", "  ") == 1.0
    assert live_similarity("", STORY) == live_similarity(STORY, None) == 0.0
    assert live_similarity(STORY, STORY) == 1.0
    # Markdown and text renderings of the same words, case and punctuation aside, are the same text.
    assert live_similarity("# The Tower\n\n**Keepers** climbed it.", "the tower keepers, climbed IT") == 1.0
    # Shorter than one shingle: compared word by word.
    assert live_similarity("yes", "yes") == 1.0 and live_similarity("yes", "no") == 0.0
    assert live_similarity("a b", "b a") == 1.0


def test_live_similarity_orders_edits_below_rewrites() -> None:
    edited = STORY.replace("Sentence 3 ", "Line three ")
    reordered = " ".join(reversed(STORY.split(". ")))
    unrelated = " ".join(f"Item {i} of the price list costs {i} pounds." for i in range(40))
    assert 0.95 < live_similarity(STORY, edited) < 1.0
    assert live_similarity(STORY, reordered) > 0.9  # moved blocks keep their shingles
    assert live_similarity(STORY, unrelated) < 0.05
    half = " ".join(STORY.split()[: len(STORY.split()) // 2])
    assert 0.6 < live_similarity(STORY, half) < 0.7  # Dice: two thirds of the shingles in common


def test_live_similarity_reads_a_bounded_number_of_words() -> None:
    words = [f"w{i}" for i in range(LIVE_MAX_WORDS + 5_000)]
    assert len(shingles(" ".join(words))) == LIVE_MAX_WORDS - 2
    # What lies past the cap does not count: two texts that differ only there are the same.
    assert live_similarity(" ".join(words), " ".join([*words[:LIVE_MAX_WORDS], "different", "tail"])) == 1.0
