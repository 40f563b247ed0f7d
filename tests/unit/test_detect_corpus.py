"""The hand-written detection corpus (fixtures/detect): every page judged exactly as its manifest says.

The loader and the confusion table are ``bench/detect.py``'s, so a held-out corpus in the same format
is judged the same way (``python bench/detect.py DIR``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.detect import Case, confusion, format_table, load_corpus, summarise
from browser_service.detect import judge

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "detect"
CASES = load_corpus(CORPUS)


def _id(case: Case) -> str:
    return f"{case.file}@{case.page.status_code}{'+' + case.page.engine if 'engine' in case.extra else ''}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_page(case: Case) -> None:
    verdict = judge(case.page)
    assert verdict.kind == case.kind, verdict.signals
    if case.vendor is not None or case.kind in ("blocked", "captcha"):
        assert verdict.vendor == case.vendor, verdict.signals
    if case.challenge is not None:
        assert verdict.challenge is case.challenge, verdict.signals
    error = verdict.error(case.page)
    assert (error is None) == (case.kind == "ok")
    if error is not None:
        assert error.kind.value == case.kind and error.vendor == verdict.vendor


def test_corpus_size() -> None:
    traps = [c for c in CASES if c.trap]
    vendor_pages = [c for c in CASES if c.kind in ("blocked", "captcha") and c.vendor is not None]
    assert len(traps) >= 25 and all(c.kind == "ok" for c in traps)
    assert len({c.vendor for c in vendor_pages}) >= 15


def test_confusion_table() -> None:
    verdicts = [judge(case.page) for case in CASES]
    print("\n" + format_table(confusion(CASES, verdicts)))
    summary = summarise(CASES, verdicts)
    print(f"traps ok {summary.traps_ok}/{summary.traps}; blocked/captcha right {summary.blocks_right}/{summary.blocks}")
    assert summary.traps_ok == summary.traps
    assert summary.blocks_right >= 0.95 * summary.blocks
