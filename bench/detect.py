"""Page-classification benchmark: run ``browser_service.detect.judge`` over a corpus and print a confusion table.

A corpus is a directory with HTML/JSON/text pages and a ``manifest.json``::

    {"pages": [{"file": "blocks/cf-1020.html", "status": 403, "headers": {"server": "cloudflare"},
                "cookies": ["__cf_bm=...; path=/"], "final_url": "https://x.example/a", "url": "...",
                "engine": "browser", "kind": "blocked", "vendor": "cloudflare", "trap": false}, ...]}

``headers`` use lower-case names; ``cookies`` are Set-Cookie header values; ``url`` (the URL asked for)
defaults to ``final_url``; ``engine`` defaults to ``browser`` (the page as the pipeline judges it);
the content type comes from the headers or the file extension. ``trap: true`` marks pages that must be
``ok`` (vendor scripts, articles about CAPTCHAs…).

    python bench/detect.py fixtures/detect            # the hand-written corpus in this repository
    python bench/detect.py /path/to/held-out --misses # any other corpus in the same format

The unit test ``tests/unit/test_detect_corpus.py`` uses the same loader and table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser_service.detect import Verdict, judge
from browser_service.engines.base import RawPage, content_kind, header_charset, mime_type

_TYPES = {".html": "text/html", ".htm": "text/html", ".json": "application/json", ".txt": "text/plain",
          ".xml": "application/xml"}  # fmt: skip
KINDS = ("ok", "blocked", "captcha", "login_required", "not_found", "rate_limited", "empty_content", "http_error",
         "unsupported_content")  # fmt: skip


@dataclass
class Case:
    file: str
    page: RawPage
    kind: str
    vendor: str | None
    trap: bool
    challenge: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_corpus(directory: str | Path) -> list[Case]:
    """Every page of ``directory/manifest.json`` as a RawPage with its expected verdict."""
    root = Path(directory)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return [_case(root, entry) for entry in manifest["pages"]]


def _case(root: Path, entry: dict[str, Any]) -> Case:
    path = root / entry["file"]
    body = path.read_bytes()
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    if entry.get("cookies"):
        headers["set-cookie"] = "\n".join(entry["cookies"])  # as the browser engine joins them
    content_type = headers.setdefault("content-type", _TYPES.get(path.suffix.lower(), "text/html") + "; charset=utf-8")
    mime = mime_type(content_type)
    kind = content_kind(mime, body)
    text = body.decode(header_charset(content_type) or "utf-8", "replace") if kind != "binary" else None
    final_url = entry["final_url"]
    page = RawPage(
        url=entry.get("url", final_url),
        final_url=final_url,
        status_code=int(entry["status"]),
        headers=headers,
        content_type=mime,
        kind=kind,
        body=body,
        text=text,
        engine=entry.get("engine", "browser"),
        redirects=[entry["url"]] if entry.get("url") and entry["url"] != final_url else [],
    )
    return Case(entry["file"], page, entry["kind"], entry.get("vendor"), bool(entry.get("trap")),
                entry.get("challenge"), entry)  # fmt: skip


def confusion(cases: list[Case], verdicts: list[Verdict]) -> Counter[tuple[str, str]]:
    return Counter((case.kind, verdict.kind) for case, verdict in zip(cases, verdicts, strict=True))


_SHORT = {"login_required": "login", "rate_limited": "rate_lim", "empty_content": "empty", "http_error": "http_err",
          "unsupported_content": "unsupp"}  # fmt: skip


def format_table(table: Counter[tuple[str, str]]) -> str:
    """Expected kind (rows) × predicted kind (columns); dots for zero."""
    kinds = [k for k in KINDS if any(k in pair for pair in table)]
    width = max(len(k) for k in kinds) + 2
    lines = ["expected \\ predicted".ljust(width) + "".join(_SHORT.get(k, k).rjust(11) for k in kinds) + "      total"]
    for expected in kinds:
        row = [table[(expected, predicted)] for predicted in kinds]
        if sum(row):
            cells = "".join((str(n) if n else ".").rjust(11) for n in row)
            lines.append(expected.ljust(width) + cells + str(sum(row)).rjust(11))
    return "\n".join(lines)


@dataclass
class Summary:
    pages: int
    correct: int
    traps: int
    traps_ok: int
    blocks: int  # expected blocked or captcha
    blocks_right: int
    vendor_expected: int
    vendor_right: int


def summarise(cases: list[Case], verdicts: list[Verdict]) -> Summary:
    pairs = list(zip(cases, verdicts, strict=True))
    blocks = [(c, v) for c, v in pairs if c.kind in ("blocked", "captcha")]
    vendored = [(c, v) for c, v in pairs if c.vendor is not None]
    return Summary(
        pages=len(pairs),
        correct=sum(c.kind == v.kind for c, v in pairs),
        traps=sum(c.trap for c in cases),
        traps_ok=sum(c.trap and v.kind == "ok" for c, v in pairs),
        blocks=len(blocks),
        blocks_right=sum(c.kind == v.kind for c, v in blocks),
        vendor_expected=len(vendored),
        vendor_right=sum(c.vendor == v.vendor for c, v in vendored),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("corpus", nargs="?", default="fixtures/detect", help="directory with manifest.json")
    parser.add_argument("--misses", action="store_true", help="list every page judged differently, with signals")
    args = parser.parse_args(argv)
    cases = load_corpus(args.corpus)
    started = time.perf_counter()
    verdicts = [judge(case.page) for case in cases]
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(format_table(confusion(cases, verdicts)))
    s = summarise(cases, verdicts)
    print(
        f"\n{s.correct}/{s.pages} right kind; traps ok {s.traps_ok}/{s.traps}; blocked/captcha right "
        f"{s.blocks_right}/{s.blocks}; vendor right {s.vendor_right}/{s.vendor_expected}; "
        f"{elapsed_ms / max(1, len(cases)):.2f} ms/page"
    )
    misses = [(c, v) for c, v in zip(cases, verdicts, strict=True) if c.kind != v.kind or c.vendor != v.vendor]
    if args.misses or misses:
        print(f"\n{len(misses)} differ:" if misses else "")
        for case, verdict in misses:
            print(f"  {case.file}: expected {case.kind}/{case.vendor}, got {verdict.kind}/{verdict.vendor} "
                  f"{list(verdict.signals)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
