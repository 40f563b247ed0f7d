"""Pure extraction functions on (html, url): main content as markdown/text/html, links, metadata and
selector fields. Independent of the service: this package never imports browser_service."""

from .core import extract
from .models import EXTRACTOR_VERSION, Extraction, FieldValue, Link, PageMetadata, SelectorSpec
from .selectors import parse_selector_map, validate_selector
from .text import visible_text

__all__ = [
    "EXTRACTOR_VERSION",
    "Extraction",
    "FieldValue",
    "Link",
    "PageMetadata",
    "SelectorSpec",
    "extract",
    "parse_selector_map",
    "validate_selector",
    "visible_text",
]
