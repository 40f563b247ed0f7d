"""``render=auto``: does the HTML that plain HTTP returned need a browser to become the real page?

The rule (also written down in docs/architecture.md). A page made of **frames** escalates — a
``<frameset>``, or iframes around under 200 characters of the page's own visible text: a browser puts
the frames' documents in place (``engines/frames.py``). Otherwise a page with no scripts never
escalates: a browser cannot add content that no script creates. A page with scripts escalates when
any of:

1. **app shell** — a known SPA mount point (``#root``, ``#app``, ``#__next``, ``#__nuxt``,
   ``#___gatsby``, ``#svelte``, ``[data-reactroot]``, ``[ng-version]``, ``app-root``) holds under
   200 characters of text;
2. **little text** — the whole page has under 200 characters of visible text;
3. **script-heavy** — under 1,500 characters of visible text and at least 10× as many bytes of
   inline script, or at least 5 external scripts with under 500 characters of text;
4. **unrendered template** — visible text still shows ``{{ placeholders }}`` (two or more);
5. **JavaScript required** — a ``<noscript>`` says JavaScript is needed and the page has under
   1,500 characters of visible text;
6. **loading placeholder** — the visible text outside navigation is dominated by a loading
   message ("Loading…", "Please wait", "Connecting…") and under 500 characters.

Thresholds are deliberately conservative towards escalating: a needless browser render costs
latency, a missed one hands the agent a skeleton.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from extractors.dom import flatten_shadow_roots

_SHELL_SELECTORS = (
    "#root",
    "#app",
    "#__next",
    "#__nuxt",
    "#___gatsby",
    "#svelte",
    "[data-reactroot]",
    "[ng-version]",
    "app-root",
)
_INVISIBLE = ("script", "style", "noscript", "template", "head", "svg")
_TEMPLATE = re.compile(r"\{\{[^{}]{1,80}\}\}")
_NEEDS_JS = re.compile(
    r"(enable|requires?|need|turn on|activate)\W+(\w+\W+){0,3}javascript"
    r"|javascript\W+(\w+\W+){0,3}(required|needed|disabled)",
    re.I,
)
#: What a page says while its content is on the way; detection discounts the same words as no content.
LOADING_WORDS = r"loading|please wait|one moment|just a second|redirecting|(?:re)?connecting"
_LOADING = re.compile(rf"^\W*({LOADING_WORDS})\b", re.I)

LITTLE_TEXT = 200
SOME_TEXT = 1_500


def _text(node: Node | None) -> str:
    if node is None:
        return ""
    return " ".join(node.text(separator=" ").split())


def needs_browser(html: str) -> str | None:
    """The reason this page needs JavaScript rendering, or None when the HTTP result is the page."""
    tree = HTMLParser(flatten_shadow_roots(html))  # server-rendered web components: their text counts
    if tree.css_first("frameset") is not None:
        return "frames: the page is a <frameset>, whose documents a browser puts together"
    scripts = tree.css("script")
    iframes = len(tree.css("iframe"))
    if not scripts and not iframes:
        return None
    external = sum(1 for s in scripts if s.attributes.get("src"))
    inline_bytes = sum(len(s.text() or "") for s in scripts if not s.attributes.get("src"))
    noscript = " ".join(_text(n) for n in tree.css("noscript"))

    for shell_selector in _SHELL_SELECTORS if scripts else ():
        shell = tree.css_first(shell_selector)
        if shell is not None:
            shell_text = _shell_text(shell)
            if len(shell_text) < LITTLE_TEXT:
                return f"app shell: {shell_selector} holds {len(shell_text)} characters of text"

    tree.strip_tags(list(_INVISIBLE))
    text = _text(tree.body)
    n = len(text)
    if iframes and n < LITTLE_TEXT:
        return f"frames: {iframes} iframe(s) around {n} visible characters"
    if not scripts:
        return None
    if n < LITTLE_TEXT:
        return f"little text: {n} visible characters and {len(scripts)} scripts"
    if n < SOME_TEXT and inline_bytes >= 10 * n:
        return f"script-heavy: {n} visible characters, {inline_bytes} bytes of inline script"
    if n < 500 and external >= 5:
        return f"script-heavy: {n} visible characters, {external} external scripts"
    if len(_TEMPLATE.findall(text)) >= 2:
        return "unrendered template placeholders ({{ … }}) in the visible text"
    if n < SOME_TEXT and _NEEDS_JS.search(noscript):
        return "a <noscript> says the page requires JavaScript"
    if n < 500:
        for nav in tree.css("nav, header, footer"):
            nav.decompose()
        main_text = _text(tree.body)
        if _LOADING.search(main_text):
            return f"loading placeholder: {main_text[:60]!r}"
    return None


def _shell_text(shell: Node) -> str:
    parts = []
    for node in shell.traverse(include_text=True):
        if node.tag == "-text":
            parent = node.parent
            if parent is not None and parent.tag in _INVISIBLE:
                continue
            parts.append(node.text_content or "")
    return " ".join(" ".join(parts).split())
