"""`extract()`: one page in, one typed Extraction out. Never raises."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from lxml import etree

from .content import Content, whole_page
from .content import main_content as select_main_content
from .dom import absolute_url, base_url, collapse_ws, parse_html, tag_of
from .links import extract_links
from .metadata import extract_metadata, page_title
from .models import Extraction, FieldValue, PageMetadata, SelectorSpec
from .render import render
from .selectors import extract_fields

FORMATS = frozenset({"markdown", "text", "html", "links", "metadata"})
_URL_ATTRS = ("href", "src")


def extract(
    html: str,
    url: str,
    *,
    main_content: bool = True,
    selectors: Mapping[str, SelectorSpec] | None = None,
    want: Collection[str] | None = None,
) -> Extraction:
    """Extract content, links, metadata and selector fields from a page.

    `want` limits the work to some of {"markdown", "text", "html", "links", "metadata"} (None = all);
    the title is always filled. Any failure becomes an empty result with a warning, never an exception.
    """
    try:
        return _extract(html, url, main_content, selectors, want)
    except RecursionError:
        return Extraction(warnings=["page is nested too deeply to extract"])
    except Exception as exc:  # the contract: a result with a warning, never an exception
        return Extraction(warnings=[f"extraction failed: {type(exc).__name__}: {str(exc)[:200]}"])


def _extract(
    html: str,
    url: str,
    use_main: bool,
    selectors: Mapping[str, SelectorSpec] | None,
    want: Collection[str] | None,
) -> Extraction:
    warnings: list[str] = []
    if not isinstance(html, str):
        html = str(html or "")
    wanted = set(FORMATS if want is None else want)
    unknown = sorted(wanted - FORMATS)
    if unknown:
        warnings.append(f"unknown formats ignored: {', '.join(unknown)}")
    wanted &= FORMATS

    fields: dict[str, FieldValue] = {}
    root = parse_html(html)
    base = base_url(root, url)
    if selectors:
        fields, field_warnings = extract_fields(html, selectors, base)
        warnings.extend(field_warnings)
    if root is None:
        warnings.append("empty document" if not html.strip() else "document could not be parsed")
        return Extraction(fields=fields, warnings=warnings)

    metadata = extract_metadata(root, url, base) if "metadata" in wanted else PageMetadata()
    title = metadata.title if "metadata" in wanted else page_title(root)
    links = extract_links(root, url, base) if "links" in wanted else []

    markdown = text = cleaned_html = ""
    found = False
    if wanted & {"markdown", "text", "html"}:
        content: Content = select_main_content(root, url) if use_main else whole_page(root)
        found = content.main_content_found
        element = content.element
        if element is not None:
            _absolutize(element, base)
            if "markdown" in wanted:
                markdown = render(element, markdown=True)
            if "text" in wanted:
                text = render(element, markdown=False)
            if "html" in wanted:
                cleaned_html = _serialize(element)
        if content.source == "none" or not (markdown or text or cleaned_html):
            warnings.append("no content found")
        elif use_main and not found:
            warnings.append("main content could not be isolated; the whole page body was used")

    return Extraction(
        title=title,
        markdown=markdown,
        text=text,
        html=cleaned_html,
        links=links,
        metadata=metadata,
        fields=fields,
        main_content_found=found,
        warnings=warnings,
    )


def _absolutize(element: etree._Element, base: str) -> None:
    """Make href/src absolute; links that lead nowhere (javascript:, #) lose their href."""
    for el in element.iter():
        if not tag_of(el):
            continue
        for attr in _URL_ATTRS:
            value = el.get(attr)
            if value is None:
                continue
            resolved = absolute_url(value, base)
            if resolved is None:
                del el.attrib[attr]
            else:
                el.set(attr, resolved)


def _serialize(element: etree._Element) -> str:
    try:
        return str(etree.tostring(element, method="html", encoding="unicode", with_tail=False)).strip()
    except (ValueError, etree.SerialisationError):
        return collapse_ws("".join(element.itertext()))
