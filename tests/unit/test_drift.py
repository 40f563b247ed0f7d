"""The comparison of a replay with its snapshot, and the normalisation of volatile fields (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from browser_service.contract import Attempt, FetchResponse
from browser_service.drift import compare, similarity, verdict
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
