"""Pages whose content is in frames: a ``<frameset>`` (old sites, manuals, archives) or a wrapper
whose iframe is the page. Chromium shows the frames' documents; the main document alone has no
text, and such a page was answered ``empty_content``.

When the main document has child frames and (next to nothing) of its own text, each frame's body
is put where its element is — ``<div data-frame-url="…">…</div>`` — with its links and sources made
absolute against the frame's own URL, and a ``<frameset>`` becomes the ``<body>``. The extractor then
reads one document, as a reader sees one page. Frames in frames are read too, two levels deep. A
page with text of its own keeps its frames out (ads, embeds, consent widgets): reading them costs a
driver round trip per frame and adds nothing the page is about.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from playwright.async_api import CDPSession, Frame, Page
from playwright.async_api import Error as PlaywrightError

from browser_service.deadline import Deadline
from browser_service.engines.page_script import call

#: Visible text below which a page with frames is read through them (a wrapper's title, a "your
#: browser does not support frames" line).
OWN_TEXT_CHARS = 200
MAX_FRAMES = 8
MAX_DEPTH = 2
#: Longest one call into a frame may take.
FRAME_CAP_S = 5.0
_READ_SCHEMES = ("http://", "https://", "about:srcdoc")

#: The visible text of a document's body (a frameset's is its frames': none).
_OWN_TEXT = "() => document.body && document.body.tagName !== 'FRAMESET' ? document.body.innerText.trim().length : 0"

#: A frame's body with every link and source absolute (they resolve against the frame, not the page
#: it is put in); its own child frames' elements keep the marks ``_marked_html`` gave them.
_BODY = """() => {
  const body = document.body;
  if (!body) return '';
  const copy = body.cloneNode(true);
  for (const [attribute, property] of [['href', 'href'], ['src', 'src']]) {
    const live = [...body.querySelectorAll('[' + attribute + ']')];
    copy.querySelectorAll('[' + attribute + ']').forEach((element, i) => {
      const resolved = live[i] && live[i][property];
      if (typeof resolved === 'string' && resolved) element.setAttribute(attribute, resolved);
    });
  }
  return copy.innerHTML;
}"""

_MARK = "(element, index) => { element.setAttribute('data-bs-frame', String(index)); return true; }"
_DOCUMENT = "() => document.documentElement.outerHTML"
_MARKED = re.compile(r"<(i?frame)\b[^>]*\bdata-bs-frame=\"(\d+)\"[^>]*>(?:\s*</iframe>)?", re.I)
_FRAMESET = re.compile(r"<(/?)frameset\b[^>]*>", re.I)


async def with_frames(page: Page, cdp: CDPSession, html: str, deadline: Deadline) -> tuple[str, int]:
    """``html`` (the main document) with its frames' bodies in place, and how many were put in;
    ``html`` itself when the page has text of its own or no frames."""
    frames = _children(page.main_frame)
    if not frames:
        return html, 0
    # Over the page's CDP session (engines/page_script.py): most pages with frames (ads, embeds)
    # stop here, and page.evaluate would first inject Playwright's helper script into the page.
    own = await _ask(deadline, call(cdp, _OWN_TEXT))
    if own is None or int(own) >= OWN_TEXT_CHARS:
        return html, 0
    marked = await _marked_html(page.main_frame, frames, deadline)
    if marked is None:
        return html, 0
    bodies = [await _frame_html(frame, deadline, 1) for frame in frames]
    return _put_in(marked, frames, bodies), sum(body is not None for body in bodies)


def _children(frame: Frame) -> list[Frame]:
    """The frames worth reading: loaded from the web (or ``srcdoc``), not Chromium's error page for
    one the network policy refused, nor an ``about:blank`` a script writes into."""
    children = [child for child in frame.child_frames if not child.is_detached()]
    return [child for child in children if child.url.startswith(_READ_SCHEMES)][:MAX_FRAMES]


async def _ask(deadline: Deadline, step: Awaitable[Any]) -> Any | None:
    """One call into a frame, for ``FRAME_CAP_S`` at most: a frame that does not answer (its script
    spinning, gone meanwhile) is left out, not waited for until the deadline."""
    try:
        return await deadline.run(step, "render", "reading the page's frames", cap_s=FRAME_CAP_S)
    except (TimeoutError, PlaywrightError):
        return None


async def _marked_html(frame: Frame, children: list[Frame], deadline: Deadline) -> str | None:
    """The frame's document with each child's element marked ``data-bs-frame=<index>``."""
    for index, child in enumerate(children):
        element = await _ask(deadline, child.frame_element())
        if element is None or await _ask(deadline, element.evaluate(_MARK, index)) is None:
            return None
    read = _DOCUMENT if frame.parent_frame is None else _BODY
    html = await _ask(deadline, frame.evaluate(read))
    return html if isinstance(html, str) else None


async def _frame_html(frame: Frame, deadline: Deadline, depth: int) -> str | None:
    """A child frame's body (its own frames in place, to ``MAX_DEPTH``); None when it cannot be read."""
    children = _children(frame) if depth < MAX_DEPTH else []
    if not children:
        html = await _ask(deadline, frame.evaluate(_BODY))
        return html if isinstance(html, str) else None
    marked = await _marked_html(frame, children, deadline)
    if marked is None:
        return None
    bodies = [await _frame_html(child, deadline, depth + 1) for child in children]
    return _put_in(marked, children, bodies)


def _put_in(html: str, frames: list[Frame], bodies: list[str | None]) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match[2])
        body = bodies[index] if index < len(bodies) else None
        if body is None:
            return ""
        url = frames[index].url.replace("&", "&amp;").replace('"', "&quot;")
        return f'<div data-frame-url="{url}">{body}</div>'

    # A frameset is the page's body; its frames become its blocks.
    return _FRAMESET.sub(lambda m: f"<{m[1]}body>", _MARKED.sub(replace, html))
