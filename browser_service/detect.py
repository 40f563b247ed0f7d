"""Classification of a raw page before extraction: is this the content, or a failure dressed as a page?

Both engines' pages are judged here by the same rules, so a 404 is ``not_found`` whether it came
over HTTP or through Chromium. Content that the extractors cannot use (PDFs, images) is
``unsupported_content`` rather than an empty success.
"""

from __future__ import annotations

import email.utils
import time

from browser_service.engines.base import RawPage
from browser_service.errors import (
    FetchError,
    HTTPStatusError,
    NotFound,
    RateLimited,
    UnsupportedContent,
)

#: Statuses worth retrying: the origin may answer differently in a moment.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date. None if absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(page: RawPage) -> None:
    """Raise the typed error that describes ``page`` if it is not usable content; return if it is."""
    error = status_error(page)
    if error is not None:
        raise error
    if page.kind == "binary":
        raise UnsupportedContent(
            f"{page.final_url} is {page.content_type or 'binary data'}, which this service does not "
            "convert to text (HTML, JSON and plain text are supported).",
            status_code=page.status_code,
        )


def status_error(page: RawPage) -> FetchError | None:
    status = page.status_code
    if status < 400:
        return None
    url = page.final_url
    if status in (404, 410):
        return NotFound(
            f"{url} does not exist (HTTP {status}). Check the URL or look for the page elsewhere; "
            "retrying will not help.",
            status_code=status,
        )
    if status == 429:
        retry_after = parse_retry_after(page.headers.get("retry-after"))
        wait = f" after {retry_after:.0f} s" if retry_after is not None else " later"
        return RateLimited(
            f"{url} is rate-limiting requests (HTTP 429). Retry{wait}; sending more now prolongs it.",
            status_code=status,
            retry_after_s=retry_after,
        )
    retryable = status in RETRYABLE_STATUSES
    if status >= 500:
        advice = "The origin server failed; retry shortly." if retryable else "The origin server failed."
    else:
        advice = "The origin refused the request; retrying the same request will not help."
    return HTTPStatusError(
        f"{url} answered HTTP {status}. {advice}",
        status_code=status,
        retryable=retryable,
        retry_after_s=parse_retry_after(page.headers.get("retry-after")) if retryable else None,
    )
