"""Remove what a reader never sees or never wants: invisible nodes and page chrome.

Two levels:
- `strip_invisible`: scripts, styles, form controls, hidden elements. Always safe.
- `strip_chrome`: navigation, headers, footers, sidebars, cookie banners, share bars... identified by
  tag, ARIA role and class/id vocabulary. A guard keeps any such element that holds most of the page's
  text, because wrappers like `<div class="page has-sidebar">` or `<header>` around a whole article exist.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import HtmlElement

from .dom import tag_of, text_lengths

_INVISIBLE_TAGS = frozenset(
    [
        "script",
        "style",
        "template",
        "svg",
        "canvas",
        "iframe",
        "object",
        "embed",
        "audio",
        "video",
        "source",
        "track",
        "map",
        "input",
        "select",
        "option",
        "optgroup",
        "textarea",
        "link",
        "meta",
        "base",
        "param",
        "frameset",
        "frame",
        "head",
        "math",
    ]
)
# Hidden-by-default or interactive containers: dropped unless they wrap much of the page (an unclosed
# <button> swallowing the document, a dialog-based layout).
_GUARDED_TAGS = frozenset({"button", "dialog", "label"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_HIDDEN_CLASS = re.compile(
    r"(?:^|\s)(?:sr-only|visually-hidden|visuallyhidden|screen-reader-text|screenreader|a11y-hidden"
    r"|hidden|is-hidden|d-none|hide|u-hidden|offscreen)(?:\s|$)",
    re.I,
)

# Strong signals: these are chrome whatever they contain.
_STRONG_TAGS = frozenset({"nav", "aside", "footer"})
_STRONG_ROLES = frozenset(["navigation", "contentinfo", "search", "dialog", "alertdialog", "menu", "menubar"])
_STRONG_WORDS = "cookie|cookies|consent|gdpr|modal|popup|breadcrumb|breadcrumbs|skip-?link"
# Weak signals: usually chrome, but kept when the element carries the page's prose (see _PageStats).
_WEAK_ROLES = frozenset(["banner", "complementary", "toolbar", "tablist"])
# Matched against each class token and the id, as whole words inside hyphen/underscore-separated names
# ("site-footer", "cookie_banner", "SocialShare"), never as substrings of unrelated words.
_WEAK_WORDS = (
    "nav|navbar|navigation|menu|menubar|footer|masthead|sidebar|header|"
    "newsletter|subscribe|subscription|signup|share|sharing|social|"
    "related|recommended|recommendations|promo|advert|advertisement|ads|ad|sponsored|banner|"
    "overlay|toolbar|pagination|pager|disclaimer|login|signin|cart|minicart|"
    "topbar|utility|outbrain|taboola|signature|"
    # Blog widgets named in one word (WordPress's "sharedaddy" share bar, "jp-relatedposts", a
    # "likes-widget" reading "Like Loading..."): the words above only match whole name parts.
    "sharedaddy|relatedposts|likes"
)


def _words_re(words: str) -> re.Pattern[str]:
    # The boundaries are case-sensitive on purpose (camelCase splits "SocialShare", not "Admin").
    return re.compile(rf"(?:^|[-_\s]|(?<=[a-z])(?=[A-Z]))(?i:{words})(?:$|[-_\s\d]|(?=[A-Z]))")


_STRONG_RE = _words_re(_STRONG_WORDS)
# A consent manager's notice: named so (or a modal dialog) and worded so. On a short page its legal text can
# outweigh the article, so the "holds most of the text" guard only spares it when it is nearly the whole page
# (a cookie policy page in a consent-named wrapper).
_CONSENT_RE = _words_re("cookie|cookies|consent|gdpr|cmp|onetrust|cookiebot|didomi|usercentrics|cookiebanner")
_CONSENT_TEXT = re.compile(r"\bcookies?\b|\bconsent\b|\bpersonal data\b|\byour privacy\b", re.I)
CONSENT_KEEP_SHARE = 0.9
_WEAK_RE = _words_re(_WEAK_WORDS)
# Comments sections: chrome on articles, content on forums; callers decide.
_COMMENTS_RE = re.compile(
    r"(?:^|[-_\s]|(?<=[a-z])(?=[A-Z]))(?i:comments?|disqus|respond|replies|reviews)(?:$|[-_\s\d]|(?=[A-Z]))"
)


def _is_hidden(el: HtmlElement) -> bool:
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = el.get("style")
    if style and _HIDDEN_STYLE.search(style):
        return True
    cls = el.get("class")
    return bool(cls and _HIDDEN_CLASS.search(cls))


def drop(el: etree._Element) -> None:
    """Remove an element but keep its tail text in place."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def strip_invisible(root: HtmlElement, *, reveal_share: float = 0.3) -> None:
    """Drop elements a browser would not show as text.

    A hidden element holding more than `reveal_share` of the page's text is kept: that is content a
    script reveals on load (React streaming into `<div hidden>`, anti-flicker wrappers), not chrome.

    <noscript> is kept: some platforms (Discourse, several shop themes) serve their whole content
    there for clients without JavaScript, which is exactly what we are.
    """
    doomed: list[etree._Element] = []
    hidden: list[etree._Element] = []
    for el in root.iter():
        tag = tag_of(el)
        if not tag:
            if not isinstance(el.tag, str):
                doomed.append(el)  # comments, processing instructions
            continue
        if tag in _INVISIBLE_TAGS:
            doomed.append(el)
        elif tag in _GUARDED_TAGS or (tag not in ("html", "body") and _is_hidden(el)):
            hidden.append(el)
    drop_all(doomed)
    if hidden:
        lengths = text_lengths(root)
        total = lengths.get(root, 0)
        drop_all([el for el in hidden if lengths.get(el, 0) <= reveal_share * total])


def drop_all(doomed: list[etree._Element]) -> None:
    # Children of an already-removed element are skipped implicitly: removing them again is harmless,
    # but checking ancestry first keeps tails from being re-attached in detached subtrees.
    gone: set[etree._Element] = set()
    for el in doomed:
        if any(a in gone for a in el.iterancestors()):
            continue
        gone.add(el)
        drop(el)


def _attr_words(el: etree._Element) -> str:
    return f"{el.get('id') or ''} {el.get('class') or ''}"


NOT_CHROME, WEAK_CHROME, COMMENTS, STRONG_CHROME = 0, 1, 2, 3


def chrome_level(el: etree._Element, *, comments_are_chrome: bool) -> int:
    """How sure we are that an element is page furniture rather than content."""
    tag = tag_of(el)
    role = (el.get("role") or "").lower()
    words = _attr_words(el)
    if tag in _STRONG_TAGS or role in _STRONG_ROLES or _STRONG_RE.search(words):
        return STRONG_CHROME
    if comments_are_chrome and _COMMENTS_RE.search(words):
        return COMMENTS
    if tag == "header":
        # A page header is chrome; the header of an article or listing card holds its title.
        inside_article = any(tag_of(a) == "article" for a in el.iterancestors())
        return NOT_CHROME if inside_article else WEAK_CHROME
    if role in _WEAK_ROLES or _WEAK_RE.search(words):
        return WEAK_CHROME
    return NOT_CHROME


def strip_chrome(root: HtmlElement, *, comments_are_chrome: bool = True) -> int:
    """Remove page chrome; return how many subtrees were removed.

    Names lie in both directions (`<section class="sidebar-first-only">` around an article, a
    `<header>` wrapping a whole post), so an element that carries most of the page's prose is kept
    whatever it is called; a mega-menu carrying most of the text is still dropped (it is all links).
    """
    body = root.find("body")
    scope = body if body is not None else root
    stats = _PageStats(scope)
    doomed: list[etree._Element] = []
    skip_until: etree._Element | None = None
    for el in scope.iterdescendants():
        if skip_until is not None:
            if _is_inside(el, skip_until):
                continue
            skip_until = None
        if not tag_of(el) or tag_of(el) in ("main", "article"):
            continue
        level = chrome_level(el, comments_are_chrome=comments_are_chrome)
        if (
            (level == WEAK_CHROME and not stats.holds_content(el))
            or (level in (COMMENTS, STRONG_CHROME) and not stats.dominates(el))
            or (level == STRONG_CHROME and _is_consent_notice(el) and not stats.is_nearly_all(el))
        ):
            doomed.append(el)
            skip_until = el
    drop_all(doomed)
    return len(doomed)


# Substrings of every _CONSENT_RE word ("cookiebot" and "cookiebanner" contain "cookie"): a quick
# test that nearly every element fails, so the exact tests run on a handful.
_CONSENT_HINT = re.compile("cookie|consent|gdpr|cmp|onetrust|didomi|usercentrics", re.I)


def _may_be_consent_named(el: etree._Element) -> bool:
    """True for every element _consent_named accepts (and a few more)."""
    attrib = el.attrib
    if not attrib:
        return False
    if attrib.get("aria-modal") == "true" or (attrib.get("role") or "").lower() in ("dialog", "alertdialog"):
        return True
    return bool(_CONSENT_HINT.search(f"{attrib.get('id') or ''} {attrib.get('class') or ''}"))


def drop_consent_notices(root: HtmlElement) -> int:
    """Remove cookie/consent notices, and no other chrome, from a page as served; return how many.

    This is trafilatura's input: it keeps a consent manager's legal text ("Privacy settings... we use
    cookies to...") as content, and on a short page that text can even outweigh the page's own prose
    and win it the choice. Other chrome is left in: trafilatura on our cleaned tree did worse. The
    same guard as in strip_chrome spares a notice that is nearly the whole page (a cookie policy).
    """
    body = root.find("body")
    scope = body if body is not None else root
    # The quick name test first: chrome_level on every element of the page cost ~9 ms per page.
    found = [
        el
        for el in scope.iterdescendants()
        if _may_be_consent_named(el)
        and tag_of(el) not in ("", "main", "article")
        and chrome_level(el, comments_are_chrome=False) == STRONG_CHROME
        and _is_consent_notice(el)
    ]
    if not found:
        return 0
    lengths = text_lengths(scope)
    total = max(1, lengths.get(scope, 0))
    doomed = [el for el in found if lengths.get(el, 0) < CONSENT_KEEP_SHARE * total]
    drop_all(doomed)
    return len(doomed)


class _PageStats:
    """Totals of the page used by the 'this is really content' guard."""

    def __init__(self, scope: etree._Element) -> None:
        self.lengths = text_lengths(scope)
        self.text = max(1, self.lengths.get(scope, 0))
        self.prose = self._prose_len(scope)

    def _len(self, el: etree._Element) -> int:
        return self.lengths.get(el, 0)

    def _links_len(self, el: etree._Element) -> int:
        return sum(self._len(a) for a in el.iter("a"))

    def _prose_len(self, el: etree._Element) -> int:
        """Text inside <p> elements outside links: the best cheap signal of running prose."""
        return sum(self._len(p) - self._links_len(p) for p in el.iter("p"))

    def holds_content(self, el: etree._Element) -> bool:
        """Carries real prose: a lot of it, or a large share of the page's."""
        prose = self._prose_len(el)
        if prose >= 500 or (self.prose >= 300 and prose > 0.4 * self.prose):
            return True
        return self.dominates(el)

    def dominates(self, el: etree._Element) -> bool:
        """Holds most of the page text, and not as links (a mega-menu would)."""
        size = self._len(el)
        return size > 0.5 * self.text and self._links_len(el) < 0.5 * size

    def is_nearly_all(self, el: etree._Element) -> bool:
        return self._len(el) >= CONSENT_KEEP_SHARE * self.text


def _is_consent_notice(el: etree._Element) -> bool:
    """A cookie/consent banner or overlay: consent vocabulary (or a modal dialog) and consent wording."""
    return _consent_named(el) and bool(_CONSENT_TEXT.search(" ".join(el.itertext())[:3_000]))


def _consent_named(el: etree._Element) -> bool:
    """Consent vocabulary in the id/class, or a modal dialog."""
    return bool(_CONSENT_RE.search(_attr_words(el))) or (
        (el.get("role") or "").lower() in ("dialog", "alertdialog") or el.get("aria-modal") == "true"
    )


def link_text_len(el: etree._Element) -> int:
    return sum(_text_len(a) for a in el.iter("a"))


def _is_inside(el: etree._Element, ancestor: etree._Element) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.getparent()
    return False


def _text_len(el: etree._Element) -> int:
    try:
        return sum(len(t.strip()) for t in el.itertext())
    except ValueError:
        return 0


_BUTTON_RE = re.compile(r"(?:^|[-_\s]|(?<=[a-z])(?=[A-Z]))(?i:btn|button|buttons|cta)(?:$|[-_\s\d]|(?=[A-Z]))")
# A button's label is a few words ("Get started", "Book a demo"); longer text is a card made clickable.
BUTTON_MAX_CHARS = 40


def drop_buttons(element: etree._Element) -> int:
    """Remove call-to-action links styled as buttons ("Contact us", "Start free trial", "Shop all").

    They sit inside content containers on service, product and listing pages but are controls, not
    content. Recognised by `role="button"` or a btn/button/cta class word on a short link or on a
    short element inside a link.
    """
    doomed: list[etree._Element] = []
    for el in element.iter("a"):
        if _text_len(el) > BUTTON_MAX_CHARS:
            continue
        if any(
            (c.get("role") or "").lower() == "button" or _BUTTON_RE.search(_attr_words(c))
            for c in (el, *el.iterdescendants())
            if isinstance(c.tag, str)
        ):
            doomed.append(el)
    drop_all(doomed)
    return len(doomed)
