"""How often the quarantine checks (browser_service/quality.py) fire on real, good pages.

Every page of the extraction benchmark is a real page as served, so each finding here is either an
extraction that really failed or a false alarm; the output lists them for a look by hand.

    .venv/bin/python bench/quality.py --data ../shared/bench-data/wcxb-dev
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
from pathlib import Path

from browser_service import quality
from browser_service.answer import extraction_for
from browser_service.contract import FetchRequest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="wcxb-dev directory (html/, ground-truth/)")
    args = parser.parse_args()
    ids = sorted(p.name.split(".")[0] for p in (args.data / "html").iterdir())
    request = FetchRequest.model_validate({"url": "https://bench.invalid/"})
    fired: collections.Counter[str] = collections.Counter()
    for page_id in ids:
        html = gzip.decompress((args.data / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        extraction, _ = extraction_for(request, html, "https://bench.invalid/")
        truth = json.loads((args.data / "ground-truth" / f"{page_id}.json").read_text())
        reference = len(" ".join((truth["ground_truth"].get("main_content") or "").split()))
        for finding in quality.assess(html, extraction.text or extraction.markdown, main_content=True):
            fired[finding.code] += 1
            print(f"{page_id}  {finding}  (reference text: {reference} chars)")
    total = sum(fired.values())
    print(f"{len(ids)} pages; findings: {dict(fired) or 'none'}; {total / len(ids):.2%} of pages flagged")


if __name__ == "__main__":
    main()
