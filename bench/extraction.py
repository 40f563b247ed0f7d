"""Main-content extraction benchmark: our `extractors.extract()` vs plain trafilatura, same run.

Data: a WCXB-style directory (html/<id>.html.gz, ground-truth/<id>.json, metadata.json), read from
outside the repository (../shared/bench-data/wcxb-dev by default); nothing of it is copied here.

Metric (the benchmark's own): per page, lowercase, \\w+ tokens, bag-of-words precision / recall / F1 of
the `text` output against ground_truth.main_content; an empty prediction scores 0 unless the reference
is empty too (then 1); the score is the plain mean of per-page F1.

    python bench/extraction.py --data ../shared/bench-data/wcxb-dev [--limit N] [--jobs N] [--subset even|odd]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_TOKEN = re.compile(r"\w+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)""", re.I)


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(text.lower()))


def score(prediction: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, f1) of bags of words."""
    pred, ref = tokens(prediction), tokens(reference)
    if not ref:
        return (1.0, 1.0, 1.0) if not pred else (0.0, 0.0, 0.0)
    if not pred:
        return 0.0, 0.0, 0.0
    overlap = sum((pred & ref).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    p, r = overlap / sum(pred.values()), overlap / sum(ref.values())
    return p, r, 2 * p * r / (p + r)


def decode(raw: bytes) -> str:
    """Bytes to text the way a fetcher would: UTF-8, else the declared charset, else detection."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _META_CHARSET.search(raw[:4096])
    if m:
        try:
            return raw.decode(m.group(1).decode("ascii", "replace"))
        except (LookupError, UnicodeDecodeError):
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    return str(best) if best is not None else raw.decode("utf-8", errors="replace")


@dataclass
class PageResult:
    page_id: str
    page_type: str
    ours: tuple[float, float, float]
    base: tuple[float, float, float]
    ours_ms: float
    base_ms: float


def _run_page(args: tuple[str, str, str]) -> PageResult:
    data_dir, page_id, page_type = args
    import trafilatura

    from extractors import extract

    root = Path(data_dir)
    html = decode(gzip.decompress((root / "html" / f"{page_id}.html.gz").read_bytes()))
    truth = json.loads((root / "ground-truth" / f"{page_id}.json").read_text(encoding="utf-8"))
    url = truth.get("url") or ""
    reference = (truth.get("ground_truth") or {}).get("main_content") or ""

    start = time.perf_counter()
    ours = extract(html, url, want={"text"}).text
    ours_ms = (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    try:
        base = trafilatura.extract(html, url=url, output_format="txt") or ""
    except Exception:
        base = ""
    base_ms = (time.perf_counter() - start) * 1000
    return PageResult(page_id, page_type, score(ours, reference), score(base, reference), ours_ms, base_ms)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/bench-data/wcxb-dev", help="benchmark directory")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages (0 = all)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--subset",
        choices=("all", "even", "odd"),
        default="all",
        help="pages with an even/odd numeric id: tune on one half, check on the other",
    )
    parser.add_argument("--dump", help="write per-page scores as JSON lines to this file")
    args = parser.parse_args(argv)

    data = Path(args.data)
    if not (data / "metadata.json").exists():
        print(f"no benchmark data at {data} (expected metadata.json, html/, ground-truth/)", file=sys.stderr)
        return 2
    files = json.loads((data / "metadata.json").read_text(encoding="utf-8")).get("files", {})
    ids = sorted(p.name.split(".")[0] for p in (data / "html").glob("*.html.gz"))
    if args.subset != "all":
        parity = 0 if args.subset == "even" else 1
        ids = [i for i in ids if i.isdigit() and int(i) % 2 == parity]
    if args.limit:
        ids = ids[: args.limit]
    tasks = [(str(data), i, (files.get(i) or {}).get("page_type", "unknown")) for i in ids]

    started = time.perf_counter()
    if args.jobs > 1:
        with mp.get_context("fork" if sys.platform != "win32" else "spawn").Pool(args.jobs) as pool:
            results = list(pool.imap_unordered(_run_page, tasks, chunksize=4))
    else:
        results = [_run_page(t) for t in tasks]
    wall = time.perf_counter() - started
    results.sort(key=lambda r: r.page_id)

    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for r in results:
                fh.write(json.dumps(r.__dict__) + "\n")

    def row(label: str, rs: list[PageResult]) -> str:
        o = _mean([r.ours[2] for r in rs])
        b = _mean([r.base[2] for r in rs])
        return f"{label:<15}{len(rs):>6}   {o:.3f}   {b:.3f}   {o - b:+.3f}"

    print(f"WCXB main-content extraction, {len(results)} pages ({args.subset}), {wall:.0f}s wall, {args.jobs} jobs")
    print("Data: WCXB (Murrough Foley, 2026), CC-BY-4.0.")
    print()
    print(f"{'page type':<15}{'pages':>6}   {'ours':>5}   {'traf':>5}   {'diff':>6}   (mean per-page F1)")
    print(row("overall", results))
    for page_type in sorted({r.page_type for r in results}):
        print(row(page_type, [r for r in results if r.page_type == page_type]))
    print()
    for label, pick, ms in (("ours", lambda r: r.ours, "ours_ms"), ("trafilatura", lambda r: r.base, "base_ms")):
        times = [getattr(r, ms) for r in results]
        print(
            f"{label:<12} F1 {_mean([pick(r)[2] for r in results]):.4f}  "
            f"P {_mean([pick(r)[0] for r in results]):.4f}  R {_mean([pick(r)[1] for r in results]):.4f}  "
            f"ms/page mean {_mean(times):.1f}  p95 {_p95(times):.1f}"
        )
    ours_f1 = _mean([r.ours[2] for r in results])
    base_f1 = _mean([r.base[2] for r in results])
    wins = sum(r.ours[2] > r.base[2] + 0.01 for r in results)
    losses = sum(r.base[2] > r.ours[2] + 0.01 for r in results)
    ratio = ours_f1 / base_f1 if base_f1 else float("inf")
    print(
        f"vs trafilatura: F1 ratio {ratio:.3f}, diff {ours_f1 - base_f1:+.4f}; "
        f"pages better {wins}, worse {losses} (by >0.01)"
    )
    command = f"python bench/extraction.py --data {args.data}"
    if args.limit:
        command += f" --limit {args.limit}"
    if args.subset != "all":
        command += f" --subset {args.subset}"
    command += f" --jobs {args.jobs}"
    print(f"reproduce: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
