from __future__ import annotations

import pytest

from browser_service.render_policy import needs_browser

ARTICLE_TEXT = "<p>" + "The harbour wall was built in 1850 from local granite. " * 20 + "</p>"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ('<html><body><div id="root"></div><script src="/app.js"></script></body></html>', "app shell: #root"),
        (
            '<html><body><div id="__next"><div></div></div><script src="/n.js"></script></body></html>',
            "app shell: #__next",
        ),
        ("<html><body><app-root></app-root><script src=main.js></script></body></html>", "app shell: app-root"),
        ("<html><body><h1>Title</h1><script src=a.js></script></body></html>", "little text"),
        (
            "<html><body><p>" + "short text " * 30 + "</p><script>" + "var a=1;" * 1000 + "</script></body></html>",
            "script-heavy",
        ),
        (
            "<html><body><h2>{{ article.title }}</h2><p>{{ article.body }}</p><p>"
            + "filler words " * 30
            + "</p><script src=vue.js></script></body></html>",
            "unrendered template",
        ),
        (
            "<html><body><noscript>Please enable JavaScript to view this site.</noscript><p>"
            + "menu entry " * 40
            + "</p><script src=x.js></script></body></html>",
            "requires JavaScript",
        ),
        (
            "<html><body><nav>Home News Sport</nav><main>Loading article… "
            + "&nbsp; " * 5
            + "tips " * 50
            + "</main><script src=x.js></script></body></html>",
            "loading placeholder",
        ),
        (  # a script redirect: its target is only reached in a browser
            "<html><body><p>Redirecting… " + "tips " * 50 + "</p><script src=go.js></script></body></html>",
            "loading placeholder",
        ),
        (  # a live page before its socket's first message
            "<html><body><nav>Home Live</nav><main><p>Connecting… "
            + "tips " * 50
            + "</p></main><script src=live.js></script></body></html>",
            "loading placeholder",
        ),
        # Pages made of frames, scripts or not: a browser puts the frames' documents together.
        ("<html><frameset cols='20%,80%'><frame src=nav.html><frame src=a.html></frameset></html>", "frames: the page"),
        ("<html><body><iframe src=/article.html></iframe></body></html>", "frames: 1 iframe(s) around 0 visible"),
    ],
)
def test_escalates(html: str, reason: str) -> None:
    verdict = needs_browser(html)
    assert verdict is not None and reason in verdict


@pytest.mark.parametrize(
    "html",
    [
        # A full article with an analytics tag: the HTTP result is the page.
        f"<html><body><article><h1>Granite</h1>{ARTICLE_TEXT}</article><script src=ga.js></script></body></html>",
        # Server-rendered React: the mount point holds the content.
        f'<html><body><div id="root"><article>{ARTICLE_TEXT}</article></div><script src=r.js></script></body></html>',
        # A short page with no scripts: a browser could add nothing.
        "<html><body><p>Closed today.</p></body></html>",
        # An empty page with no scripts.
        "<html><body></body></html>",
        # A noscript notice on a page that has its content.
        "<html><body><noscript>Enable JavaScript for comments.</noscript>"
        f"{ARTICLE_TEXT * 2}<script src=c.js></script></body></html>",
        # An article with an embed: its own text is the page.
        f"<html><body><article>{ARTICLE_TEXT}<iframe src=https://video.example/e/1></iframe></article></body></html>",
        # A static page shaped like an app's mount point, no scripts: nothing would fill it.
        "<html><body><div id=app><iframe src=map.html></iframe>" + "Opening hours " * 20 + "</div></body></html>",
    ],
)
def test_stays_on_http(html: str) -> None:
    assert needs_browser(html) is None
