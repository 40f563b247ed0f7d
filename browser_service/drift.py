"""How extracted text drifts from a baseline: a replay against its recording, a live fetch against its cache.

Per request: whether the verdict changed (ok, or the error kind — ``ok → captcha``), which fields
changed (dotted paths, old → new), a unified diff of the markdown (or text), and the **similarity**
of the extracted text to the baseline: difflib's ratio over words, 1.0 for identical text. A
similarity below the threshold (``BROWSER_SERVICE_DRIFT_THRESHOLD``, 0.9) is flagged as large drift —
the extractor or the site changed what a reader would get, not just a detail.

Live fetches (``fetcher``) compare the new text with the cached good copy of the same request by
:func:`live_similarity` instead: shingles, not difflib. difflib is quadratic in the worst case and a
live fetch pays for it on every repeat of a URL; it also scores two unrelated English texts 0.2–0.4
(shared function words), while shingles score them near 0 — and the live check must only tell "this is
a different page now" from an ordinary edit (``quality.py`` has the threshold and the data behind it).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

#: Text formats diffed line by line rather than listed as a changed field.
_TEXT_FIELDS = ("markdown", "text", "html", "raw_html")
_MAX_FIELDS = 20
_MAX_DIFF_LINES = 60


def similarity(baseline: str | None, current: str | None) -> float:
    """1.0 for the same words in the same order, down to 0.0 for nothing in common."""
    a, b = (baseline or "").split(), (current or "").split()
    if a == b:
        return 1.0
    return round(difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 3)


#: Words compared at most per side: bounds the cost on huge pages (linear in it: ~20 ms for 20 k words).
LIVE_MAX_WORDS = 20_000
SHINGLE = 3
_WORD = re.compile(r"\w+")


def shingles(text: str, max_words: int = LIVE_MAX_WORDS) -> set[tuple[str, ...]]:
    """The runs of three consecutive words (lower-cased) in the first ``max_words`` words; the single
    words when the text is shorter than one run."""
    words = _WORD.findall(text[: max_words * 16].lower())[:max_words]
    if len(words) < SHINGLE:
        return {(w,) for w in words}
    return set(zip(words, words[1:], words[2:], strict=False))


def live_similarity(baseline: str | None, current: str | None) -> float:
    """Dice overlap of word 3-shingles: 1.0 for the same text, near 0.0 for unrelated texts.

    Order-insensitive between runs (a reordered list of headlines stays similar), linear in the
    capped length; words are ``\\w+`` tokens, lower-cased, so Markdown or text renderings of one page compare
    alike. Two empty texts are identical (1.0); an empty against a non-empty one shares nothing (0.0).
    """
    a, b = shingles(baseline or ""), shingles(current or "")
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return round(2 * len(a & b) / (len(a) + len(b)), 3)


def verdict(data: dict[str, Any]) -> str:
    """``ok``, ``ok (suspect)`` or the error kind (with the vendor for blocks)."""
    if data.get("ok"):
        quality = data.get("quality") or {}
        return "ok (suspect)" if quality.get("verdict") == "suspect" else "ok"
    error = data.get("error") or {}
    kind = str(error.get("kind", "error"))
    return f"{kind} ({error['vendor']})" if error.get("vendor") else kind


@dataclass
class RequestDiff:
    index: int
    url: str
    similarity: float
    verdict: tuple[str, str] | None = None
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)
    text_diff: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.verdict or self.fields or self.text_diff)


@dataclass
class Comparison:
    name: str
    threshold: float
    requests: list[RequestDiff]
    misses: list[str] = field(default_factory=list)
    count_changed: tuple[int, int] | None = None
    #: The new answers were written as the snapshot (``--update``): accepted, so passed.
    updated: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.count_changed) or any(r.changed for r in self.requests)

    @property
    def passed(self) -> bool:
        return self.updated or not self.changed

    @property
    def similarity(self) -> float:
        return min((r.similarity for r in self.requests), default=1.0)

    @property
    def drifted(self) -> bool:
        return self.similarity < self.threshold

    def summary(self) -> str:
        n = len(self.requests)
        status = "PASS" if not self.changed else "UPDATED" if self.updated else "FAIL"
        head = f"{status} {self.name} ({n} request{'s' if n != 1 else ''})"
        if not self.changed:
            return head
        drift = f"similarity {self.similarity:.3f}"
        if self.drifted:
            drift += f" — LARGE DRIFT (below {self.threshold})"
        return f"{head}: {drift}"

    def report(self) -> str:
        lines = [self.summary()]
        if self.count_changed:
            lines.append(f"  the snapshot has {self.count_changed[0]} answers, the replay gave {self.count_changed[1]}")
        for r in self.requests:
            if not r.changed:
                continue
            lines.append(f"  [{r.index}] {r.url} (similarity {r.similarity:.3f})")
            if r.verdict:
                lines.append(f"    verdict: {r.verdict[0]} → {r.verdict[1]}")
            for path, old, new in r.fields[:_MAX_FIELDS]:
                lines.append(f"    changed {path}: {_short(old)} → {_short(new)}")
            if len(r.fields) > _MAX_FIELDS:
                lines.append(f"    … and {len(r.fields) - _MAX_FIELDS} more fields")
            if r.text_diff:
                lines.extend("    " + line for line in r.text_diff[:_MAX_DIFF_LINES])
                if len(r.text_diff) > _MAX_DIFF_LINES:
                    lines.append(f"    … {len(r.text_diff) - _MAX_DIFF_LINES} more diff lines")
        if self.misses:
            lines.append(f"  asked for what the recording lacks: {', '.join(self.misses[:5])}")
        return "\n".join(lines)


def compare(
    name: str,
    expected: list[dict[str, Any]],
    actual: list[dict[str, Any]],
    *,
    threshold: float = 0.9,
    misses: list[str] | None = None,
) -> Comparison:
    """``expected`` and ``actual``: normalised answers (``recording.normalise``)."""
    diffs = [_compare_one(i, e, a) for i, (e, a) in enumerate(zip(expected, actual, strict=False))]
    count = (len(expected), len(actual)) if len(expected) != len(actual) else None
    return Comparison(name, threshold, diffs, list(misses or []), count)


def _compare_one(index: int, expected: dict[str, Any], actual: dict[str, Any]) -> RequestDiff:
    text_field = next((f for f in _TEXT_FIELDS if expected.get(f) is not None or actual.get(f) is not None), None)
    old_text = expected.get(text_field) if text_field else None
    new_text = actual.get(text_field) if text_field else None
    diff = RequestDiff(index, str(expected.get("url") or actual.get("url")), similarity(old_text, new_text))
    before, after = verdict(expected), verdict(actual)
    if before != after:
        diff.verdict = (before, after)
    if text_field and old_text != new_text:
        diff.text_diff = list(
            difflib.unified_diff(
                (old_text or "").splitlines(),
                (new_text or "").splitlines(),
                f"expected {text_field}",
                f"replayed {text_field}",
                lineterm="",
            )
        )
    skip = {text_field} if text_field else set()
    diff.fields = [c for c in _changes("", expected, actual) if c[0].split(".")[0].split("[")[0] not in skip]
    return diff


def _changes(path: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in dict.fromkeys([*old, *new]):
            out += _changes(f"{path}.{key}" if path else str(key), old.get(key), new.get(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += _changes(f"{path}[{i}]", a, b)
        return out
    return [] if old == new else [(path, old, new)]


def _short(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
