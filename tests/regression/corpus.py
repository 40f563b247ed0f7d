"""The regression corpus: recordings of the fixture site (``tests/site.py``) kept in ``fixtures/recordings``.

Re-record all of them (or some, by name) with one command, from the repository root::

    .venv/bin/python -m tests.regression.corpus            # every entry of CORPUS
    .venv/bin/python -m tests.regression.corpus spa 404    # just these

It serves the fixture site on 127.0.0.1:8765 (a fixed port: the URLs are part of the recordings)
and records each entry through the real pipeline. To add a recording, add a line to ``CORPUS``:
its name, the paths to fetch and any request options. ``test_corpus.py`` replays them all offline.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from browser_service.contract import FetchRequest
from browser_service.recorder import record
from browser_service.settings import Settings
from tests.site import FixtureServer

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "fixtures" / "recordings"
PORT = 8765

#: name → (paths on the fixture site, request options)
CORPUS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "article": (["/article.html"], {}),
    "js-article": (["/js-article"], {}),
    "spa": (["/spa.html"], {}),
    "404": (["/no-such-page"], {}),
    "challenge": (["/challenge"], {}),
    "non-utf8": (["/meta-charset"], {"formats": ["markdown", "metadata"]}),
    "redirects": (["/redirect?n=3"], {}),
    "rate-limited": (["/rate-limited?after=600"], {}),
    "login-wall": (["/members"], {}),
    "infinite-scroll": (["/infinite"], {"formats": ["text"], "actions": [{"type": "scroll_until_stable"}]}),
    "cookie-consent": (["/consent"], {}),
    "paywall": (["/premium/keepers"], {}),
    "soft-404": (["/stories/moved-on"], {}),
    "server-error": (["/error"], {}),
    "maintenance": (["/maintenance"], {}),
    "challenge-datadome": (["/blocked/datadome-blocked"], {}),
    "challenge-perimeterx": (["/blocked/perimeterx-press-hold"], {}),
    "challenge-akamai": (["/blocked/akamai-access-denied"], {}),
    "challenge-aws-waf": (["/blocked/aws-waf-captcha"], {}),
    "captcha-hcaptcha": (["/blocked/hcaptcha-interstitial"], {}),
    "json-api": (["/data.json"], {}),
    "plain-text": (["/notes.txt"], {}),
    "mislabelled-encoding": (["/latin1-as-utf8"], {}),
    "redirect-forbidden": (["/redirect-to?to=http://127.0.0.1:9/secret"], {}),
}


def settings() -> Settings:
    """Recording settings: only the fixture site allowed; a short challenge wait (the fixture's
    challenge never passes by itself, and the wait is paid again on every replay)."""
    return Settings(  # type: ignore[call-arg]
        allow=[f"127.0.0.1:{PORT}"],
        challenge_wait_ms=1_000,
        breaker_min_calls=1_000,
        breaker_window=1_000,
    )


async def record_corpus(names: list[str], base_url: str) -> None:
    for name in names:
        paths, options = CORPUS[name]
        requests = [FetchRequest.model_validate({"url": base_url + p, **options}) for p in paths]
        recording, responses = await record(requests, name, RECORDINGS, settings=settings())
        kinds = ", ".join("ok" if r.ok else r.error.kind.value if r.error else "?" for r in responses)
        print(f"{name}: {kinds} → {recording.path.relative_to(ROOT)}")


def main(argv: list[str]) -> None:
    names = argv or list(CORPUS)
    unknown = [n for n in names if n not in CORPUS]
    if unknown:
        raise SystemExit(f"not in CORPUS: {', '.join(unknown)}")
    site = FixtureServer(port=PORT).start()
    try:
        asyncio.run(record_corpus(names, site.base_url))
    finally:
        site.close()


if __name__ == "__main__":
    main(sys.argv[1:])
