"""Shaping answers: a page (live, cached or supplied) or an error into one ``FetchResponse``.

CPU work (the extractors) happens here, so the fetcher runs these functions off the event loop.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Collection

from browser_service import budget, detect
from browser_service.contract import (
    TEXT_FORMATS,
    Attempt,
    ExtractOptions,
    ExtractRequest,
    FetchResponse,
    Format,
    Quality,
)
from browser_service.errors import EmptyContent, FetchError
from extractors import EXTRACTOR_VERSION, Extraction, extract

#: The formats the extractors produce (the others come from the raw page or the browser).
EXTRACTED: tuple[Format, ...] = ("markdown", "text", "html", "links", "metadata")


def extraction_for(
    options: ExtractOptions,
    body: str,
    url: str,
    stored: Extraction | None = None,
    stored_formats: Collection[str] = (),
) -> tuple[Extraction, frozenset[str]]:
    """The extraction ``options`` need, reusing ``stored`` when it has every format asked for.

    When the main content is empty but the page is not, the whole page is returned instead, with a
    warning: a page of links tells an agent more than an ``empty_content`` error would.
    """
    want: frozenset[str] = frozenset(f for f in options.formats if f in EXTRACTED)
    if stored is not None and stored.version == EXTRACTOR_VERSION:
        if want <= frozenset(stored_formats):
            return stored, frozenset(stored_formats)
        want |= frozenset(stored_formats)  # keep what the stored one had, for later hits
    selectors = options.selector_specs() or None
    result = extract(body, url, main_content=options.main_content, selectors=selectors, want=want)
    content_wanted = bool(want & {"markdown", "text", "html"})
    if options.main_content and content_wanted and not (result.markdown or result.text or result.html):
        whole = extract(body, url, main_content=False, selectors=selectors, want=want)
        if whole.markdown or whole.text or whole.html:
            whole.warnings.append("no main content found; returned the whole page's text instead")
            result = whole
    return result, want


def fill_content(
    response: FetchResponse,
    options: ExtractOptions,
    body: str,
    extraction: Extraction | None,
    title: str | None = None,
) -> None:
    """Put the requested formats into ``response``, paged by the context budget.

    ``extraction`` is that of an HTML page; None means ``body`` is text (JSON, plain text …),
    which comes back as it is in every text format asked for.
    """
    formats = options.formats
    full: dict[Format, str] = {}
    if extraction is not None:
        response.title = extraction.title or title
        for fmt in ("markdown", "text", "html"):
            if fmt in formats:
                full[fmt] = getattr(extraction, fmt)
        if "raw_html" in formats:
            full["raw_html"] = body
        if "links" in formats:
            response.links = extraction.links
        if "metadata" in formats:
            response.metadata = extraction.metadata
        if options.selectors:
            response.fields = extraction.fields
        response.warnings.extend(extraction.warnings)
        paywalled = detect.paywall(body)
        if paywalled:
            response.warnings.append(
                "the page is behind a paywall: the text is the free teaser only, not the whole article "
                f"(signals: {'; '.join(paywalled)}). Use a logged-in session (cookies) or another source."
            )
            response.quality = response.quality or Quality()
            response.quality.signals.append("paywall")
    else:
        for fmt in formats:
            if fmt in TEXT_FORMATS:
                full[fmt] = body
        if "links" in formats or "metadata" in formats or options.selectors:
            response.warnings.append("links, metadata and selectors apply to HTML only")

    primary = options.primary_text_format()
    if primary is not None and not full[primary].strip():
        raise EmptyContent(
            f"{response.final_url or response.url} has no text content"
            + (" even after rendering in the browser." if response.engine == "browser" else ".")
            + " The page may be empty, or need a wait_for selector for content that loads late."
        )
    for fmt, text in full.items():
        if fmt == primary:
            chunk, response.content = budget.page(text, fmt, options.start_index, options.max_chars)
            response.content_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if options.start_index > len(text):
                response.warnings.append(
                    f"start_index {options.start_index} is past the end of the {fmt} ({len(text)} characters)"
                )
        elif options.start_index > 0:
            response.warnings.append(f"{fmt} is omitted: start_index pages through {primary} only")
            continue
        else:
            chunk, part = budget.page(text, fmt, 0, options.max_chars)
            if part.truncated:
                response.warnings.append(
                    f"{fmt} was cut to {len(chunk)} of {len(text)} characters; request it first in formats "
                    "to page through it"
                )
        setattr(response, fmt, chunk)


def error_response(url: str, exc: FetchError, trace_id: str, attempts: list[Attempt]) -> FetchResponse:
    return FetchResponse(
        ok=False, url=url, status_code=exc.status_code, error=exc.info(), attempts=attempts, trace_id=trace_id
    )


def extract_response(request: ExtractRequest) -> FetchResponse:
    """Run the extractors on caller-supplied HTML: the same answer shape as a fetch."""
    trace_id = uuid.uuid4().hex
    started = time.monotonic()
    url = str(request.url)
    response = FetchResponse(
        ok=True, url=url, final_url=url, source="input", content_type="text/html", trace_id=trace_id
    )
    try:
        extraction, _ = extraction_for(request, request.html, url)
        fill_content(response, request, request.html, extraction)
    except FetchError as exc:
        response = error_response(url, exc, trace_id, [])
    response.duration_ms = int((time.monotonic() - started) * 1000)
    return response
