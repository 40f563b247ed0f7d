"""extract(): main-content selection and Markdown/text rendering on small hand-written pages."""

from __future__ import annotations

import time

import pytest
from lxml import etree
from lxml.html import HtmlElement

from extractors import EXTRACTOR_VERSION, Extraction, extract

URL = "https://beans.example/guides/coffee?ref=x"

ARTICLE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
  <title>Brewing Better Coffee | The Bean Blog</title>
  <meta name="description" content="A short guide to brewing coffee at home.">
</head>
<body>
  <header class="site-header"><a href="/">The Bean Blog</a>
    <nav><ul><li><a href="/">Home</a></li><li><a href="/guides">Guides</a></li>
    <li><a href="/about">About</a></li></ul></nav>
  </header>
  <div class="cookie-banner">We use cookies. <button>Accept</button></div>
  <main>
    <article>
      <h1>Brewing Better Coffee</h1>
      <p>Good coffee starts with <strong>fresh beans</strong> and clean water. This guide walks through
         the basics that matter most, based on <a href="/guides/beans">our bean guide</a>.</p>
      <h2>What you need</h2>
      <ul>
        <li>A burr grinder</li>
        <li>A kettle with a thermometer</li>
        <li>Filter papers</li>
      </ul>
      <h2>Ratios</h2>
      <p>Use these ratios as a starting point and adjust to taste.</p>
      <table>
        <tr><th>Method</th><th>Coffee</th><th>Water</th></tr>
        <tr><td>Pour-over</td><td>15 g</td><td>250 ml</td></tr>
        <tr><td>French press</td><td>30 g</td><td>500 ml</td></tr>
      </table>
      <h2>Timing</h2>
      <p>A simple timer script helps you keep every brew consistent:</p>
      <pre><code class="language-python">for second in range(240):
    wait(1)</code></pre>
      <p>Let the coffee rest for a minute before you drink it.</p>
    </article>
  </main>
  <aside class="sidebar"><h3>Popular</h3><ul><li><a href="/tea">Tea guide</a></li>
  <li><a href="/milk">Milk guide</a></li></ul></aside>
  <footer class="site-footer"><p>Copyright 2026 The Bean Blog</p><a href="/privacy">Privacy</a></footer>
  <script>trackVisit("guide");</script>
</body>
</html>"""

EXPECTED_MARKDOWN = """# Brewing Better Coffee

Good coffee starts with **fresh beans** and clean water. This guide walks through the basics that \
matter most, based on [our bean guide](https://beans.example/guides/beans).

## What you need

- A burr grinder
- A kettle with a thermometer
- Filter papers

## Ratios

Use these ratios as a starting point and adjust to taste.

| Method | Coffee | Water |
| --- | --- | --- |
| Pour-over | 15 g | 250 ml |
| French press | 30 g | 500 ml |

## Timing

A simple timer script helps you keep every brew consistent:

```python
for second in range(240):
    wait(1)
```

Let the coffee rest for a minute before you drink it."""

EXPECTED_TEXT = """Brewing Better Coffee

Good coffee starts with fresh beans and clean water. This guide walks through the basics that \
matter most, based on our bean guide.

What you need

A burr grinder
A kettle with a thermometer
Filter papers

Ratios

Use these ratios as a starting point and adjust to taste.

Method | Coffee | Water
Pour-over | 15 g | 250 ml
French press | 30 g | 500 ml

Timing

A simple timer script helps you keep every brew consistent:

for second in range(240):
    wait(1)

Let the coffee rest for a minute before you drink it."""


def test_article_main_content_exact_markdown() -> None:
    result = extract(ARTICLE, URL)
    assert result.markdown == EXPECTED_MARKDOWN


def test_article_main_content_exact_text() -> None:
    result = extract(ARTICLE, URL)
    assert result.text == EXPECTED_TEXT


def test_article_boilerplate_is_excluded_everywhere() -> None:
    result = extract(ARTICLE, URL)
    for boilerplate in ("We use cookies", "Accept", "Tea guide", "Copyright", "Privacy", "trackVisit", "About"):
        assert boilerplate not in result.markdown
        assert boilerplate not in result.text
        assert boilerplate not in result.html
    assert result.main_content_found is True
    assert result.warnings == []


def test_article_result_fields() -> None:
    result = extract(ARTICLE, URL)
    assert isinstance(result, Extraction)
    assert result.title == "Brewing Better Coffee | The Bean Blog"
    assert result.version == EXTRACTOR_VERSION
    assert result.fields == {}
    assert result.html.startswith("<article>")
    assert '<a href="https://beans.example/guides/beans">our bean guide</a>' in result.html
    assert "<script" not in result.html and "<nav" not in result.html


def test_whole_page_when_main_content_is_false() -> None:
    result = extract(ARTICLE, URL, main_content=False)
    assert result.main_content_found is False
    for part in ("The Bean Blog", "Home", "We use cookies.", "Good coffee starts", "Tea guide", "Copyright 2026"):
        assert part in result.text
    assert "trackVisit" not in result.text  # scripts are never content
    assert "Accept" not in result.text  # nor are form controls
    assert "[Tea guide](https://beans.example/tea)" in result.markdown


def test_want_limits_the_work_but_title_is_always_filled() -> None:
    result = extract(ARTICLE, URL, want={"text"})
    assert result.text == EXPECTED_TEXT
    assert result.markdown == "" and result.html == ""
    assert result.links == []
    assert result.metadata.description is None and result.metadata.json_ld == []
    assert result.title == "Brewing Better Coffee | The Bean Blog"

    only_links = extract(ARTICLE, URL, want=["links"])
    assert only_links.text == "" and only_links.markdown == ""
    assert len(only_links.links) > 0


def test_unknown_format_is_a_warning() -> None:
    result = extract(ARTICLE, URL, want={"text", "pdf"})
    assert result.warnings == ["unknown formats ignored: pdf"]
    assert result.text == EXPECTED_TEXT


def test_listing_cards_are_kept_with_their_links() -> None:
    cards = "".join(
        f'<article class="card"><a href="/item/{n}"><h3>Item number {n}</h3><p>Description of item {n} '
        f"with enough words to read like a teaser.</p></a></article>"
        for n in range(1, 6)
    )
    page = (
        '<html><body><nav><a href="/">Home</a><a href="/shop">Shop</a></nav>'
        f'<main><h1>All items</h1><div class="grid">{cards}</div></main>'
        "<footer>Footer text</footer></body></html>"
    )
    result = extract(page, "https://shop.example/list")
    assert "### [Item number 3](https://shop.example/item/3)" in result.markdown
    assert "Description of item 5 with enough words to read like a teaser." in result.text
    assert "Footer text" not in result.text and "Home" not in result.text


def test_nested_lists_blockquote_and_line_breaks() -> None:
    page = """<html><body><main>
      <ol start="3"><li>Third<ul><li>Inner</li></ul></li><li>Fourth</li></ol>
      <blockquote><p>Quoted line one<br>line two</p></blockquote>
      <p>Inline <code>x = 1</code> and <em>emphasis</em>.</p><hr>
    </main></body></html>"""
    result = extract(page, "https://x.example/", main_content=False)
    assert result.markdown == (
        "3. Third\n   - Inner\n4. Fourth\n\n> Quoted line one\n> line two\n\nInline `x = 1` and *emphasis*.\n\n---"
    )
    assert result.text == "Third\nInner\nFourth\n\nQuoted line one\nline two\n\nInline x = 1 and emphasis."


def test_page_that_is_only_chrome_has_no_content() -> None:
    page = (
        '<html><body><header><nav><a href="/a">Alpha section of the site</a><a href="/b">Beta section of the '
        'site</a><a href="/c">Gamma section of the site</a><a href="/d">Delta section of the site</a></nav>'
        '</header><div id="app"><noscript>Please enable JavaScript.</noscript></div>'
        '<footer class="footer">© 2026 Example Incorporated, all rights reserved.</footer></body></html>'
    )
    result = extract(page, "https://spa.example/")
    assert result.text == "" and result.markdown == ""
    assert result.main_content_found is False
    assert result.warnings == ["no content found"]


def test_tiny_page_content_is_returned() -> None:
    result = extract("<p>Hello world</p>", "https://x.example/")
    assert result.text == "Hello world"
    assert result.markdown == "Hello world"


def test_hostile_inputs_never_raise() -> None:
    cases = {
        "empty": "",
        "whitespace": "   \n\t ",
        "five megabytes of text": "word " * 1_000_000,
        "deep nesting": "<div>" * 5000 + "deep text" + "</div>" * 5000,
        "invalid bytes": bytes(range(256)).decode("utf-8", errors="replace") * 50,
        "nul bytes": "<p>a\x00b</p>",
        "lone surrogate": "<p>bad \udcff char</p>",
        "xml declaration": '<?xml version="1.0" encoding="iso-8859-1"?><html><body><p>café</p></body></html>',
        "unclosed everything": "<html><body><div><p><b><i><table><tr><td>cell" * 200,
        "binary garbage": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40).decode("latin-1"),
    }
    for name, html in cases.items():
        started = time.monotonic()
        result = extract(html, "https://x.example/", selectors=None)
        assert isinstance(result, Extraction), name
        assert time.monotonic() - started < 30, name
    assert extract("", "https://x.example/").warnings == ["empty document"]
    assert extract("   \n\t ", "https://x.example/").text == ""
    assert extract("<p>a\x00b</p>", "https://x.example/").text == "ab"
    assert extract("<p>bad \udcff char</p>", "https://x.example/").text == "bad ? char"
    xml = extract(cases["xml declaration"], "https://x.example/")
    assert xml.text == "café"
    big = extract(cases["five megabytes of text"], "https://x.example/", want={"text"})
    assert big.text.startswith("word word") and len(big.text) == len("word " * 1_000_000) - 1


def test_bad_url_does_not_break_extraction() -> None:
    result = extract('<p>Text <a href="/x">link</a> here</p>', "not a url")
    assert result.text == "Text link here"
    assert [link.url for link in result.links] == []  # relative links cannot be made absolute


def _thread_page() -> str:
    posts = "".join(
        f'<div class="comment"><span class="user">user{n}</span><span class="date">Jan {n}, 2026</span>'
        f"<p>Reply number {n} explains the problem in a full sentence with some detail.</p></div>"
        for n in range(1, 4)
    )
    return (
        f"<html><head><title>Thread</title></head><body><main><h1>Question title here</h1>"
        f"<p>The original post describes what went wrong in several words of prose.</p>"
        f'<section id="comments">{posts}</section></main></body></html>'
    )


def test_comments_are_content_on_forums_and_boilerplate_on_articles() -> None:
    forum = extract(_thread_page(), "https://forum.example/t/question-title/123")
    assert "Reply number 2 explains the problem" in forum.text
    assert "user2" not in forum.text  # short post metadata is dropped on threads
    blog = extract(_thread_page(), "https://www.example/blog/post")
    assert "The original post describes" in blog.text
    assert "Reply number" not in blog.text


def test_figure_captions_are_dropped_with_their_images() -> None:
    page = (
        "<html><body><main><p>First paragraph of the story, long enough to be content.</p>"
        '<figure><img src="a.jpg" alt="A"><figcaption>Photo credit: someone</figcaption></figure>'
        "<p>Second paragraph of the story, also long enough to be content.</p></main></body></html>"
    )
    result = extract(page, "https://x.example/story")
    assert result.text == (
        "First paragraph of the story, long enough to be content.\n\n"
        "Second paragraph of the story, also long enough to be content."
    )


def test_repeated_blocks_are_kept_once_in_every_format() -> None:
    quote = "This service changed how our whole team plans the week, highly recommended."
    page = (
        "<html><body><main><h1>What customers say</h1>"
        "<p>We asked a hundred customers what they think of the planner and wrote it down.</p>"
        # A carousel repeats its slides so it can loop; a reader needs each one once.
        f'<div class="slides"><div class="slide"><p>{quote}</p><p>Ann</p></div>'
        f'<div class="slide"><p>{quote}</p><p>Ann</p></div></div>'
        "<pre><code>retry()\nretry()\nretry()</code></pre>"
        "<ul><li>Yes</li><li>Yes</li></ul></main></body></html>"
    )
    result = extract(page, "https://x.example/reviews-page")
    assert result.text.count(quote) == 1
    assert result.markdown.count(quote) == 1
    assert result.html.count(quote) == 1
    assert result.text.count("Ann") == 2  # short repeats are ordinary content
    assert "retry()\nretry()\nretry()" in result.text  # code is never deduplicated
    assert result.text.count("Yes") == 2


def test_call_to_action_buttons_are_dropped() -> None:
    page = (
        "<html><body><main><h1>Managed hosting</h1>"
        "<p>We run your servers, patch them and watch them at night so you can sleep.</p>"
        '<p><a class="btn btn-primary" href="/signup">Start free trial</a>'
        '<a href="/demo"><span class="Button__label">Book a demo</span></a>'
        '<a role="button" href="/call">Call us</a></p>'
        '<p>Read <a class="link" href="/docs">the documentation</a> for the details of each plan.</p>'
        "</main></body></html>"
    )
    result = extract(page, "https://hosting.example/managed")
    assert "Start free trial" not in result.text
    assert "Book a demo" not in result.text and "Call us" not in result.text
    assert "Read the documentation for the details of each plan." in result.text


def test_customer_reviews_and_signatures_are_chrome() -> None:
    from extractors.clean import COMMENTS, NOT_CHROME, WEAK_CHROME, chrome_level
    from extractors.dom import parse_html

    root = parse_html(
        '<html><body><section id="reviews">r</section><div class="productReviews">r</div>'
        '<div class="post-signature">s</div><div class="review-body">a reviewed film</div></body></html>'
    )
    assert root is not None
    body = root.find("body")
    assert body is not None
    reviews, product_reviews, signature, review_body = list(body)
    # Customer reviews are user comments on a product: chrome unless the page is a discussion.
    assert chrome_level(reviews, comments_are_chrome=True) == COMMENTS
    assert chrome_level(product_reviews, comments_are_chrome=True) == COMMENTS
    assert chrome_level(reviews, comments_are_chrome=False) == NOT_CHROME
    assert chrome_level(review_body, comments_are_chrome=True) == NOT_CHROME  # the text of a review article
    assert chrome_level(signature, comments_are_chrome=False) == WEAK_CHROME


def test_trafilatura_runs_only_when_the_region_is_in_doubt(monkeypatch: pytest.MonkeyPatch) -> None:
    from extractors import content

    calls: list[str] = []
    real = content.trafilatura_html

    def spy(root: HtmlElement, url: str, *, with_comments: bool) -> etree._Element | None:
        calls.append(url)
        return real(root, url, with_comments=with_comments)

    monkeypatch.setattr(content, "trafilatura_html", spy)
    clear = extract(ARTICLE, URL)  # the article holds nearly all of the visible text
    assert clear.text == EXPECTED_TEXT and calls == []
    product = '<script type="application/ld+json">{"@type": "Product"}</script>'
    extract(ARTICLE.replace("</head>", f"{product}</head>"), URL)
    assert calls == [URL]  # product pages always compare both candidates


def test_text_lengths_match_itertext() -> None:
    from extractors.dom import parse_html, text_lengths

    root = parse_html(
        "<html><body><div> a <b>bb</b> c<!-- note --> d <p> eee <i>f</i></p>  g </div><p>h</p></body></html>"
    )
    assert root is not None
    lengths = text_lengths(root)
    for el in root.iter():
        assert lengths[el] == sum(len(t.strip()) for t in el.itertext()), el.tag


# --- consent overlays (the regression corpus's cookie-consent page) ---------------------------------

_CONSENT_BANNER = (
    "<div id='cmp-banner' class='cmp-banner' role='dialog' aria-modal='true'><h2>We value your privacy</h2>"
    + "<p>We and our partners store and/or access information on a device, such as cookies, and process "
    "personal data for personalised advertising and content measurement.</p>"
    * 4
    + "<button>Accept all cookies</button><button>Reject all</button></div>"
)
_STORY = (
    "<div class='post'><h1>Tide Tables Explained</h1>"
    + "<p>The Moon pulls the ocean towards it, and the Earth turning beneath gives two tides a day.</p>" * 3
    + "</div>"
)


def test_a_consent_banner_longer_than_a_short_story_is_not_the_content() -> None:
    """Plain divs, no <main>: the banner holds most of the text, but it is a consent notice."""
    body = f"{_CONSENT_BANNER}<div class='content'>{_STORY}</div>"
    page = f"<html><head><title>Tides</title></head><body>{body}</body></html>"
    result = extract(page, URL, want={"markdown"})
    assert result.markdown.startswith("# Tide Tables Explained\n\nThe Moon pulls")
    assert "privacy" not in result.markdown and "cookies" not in result.markdown


def test_a_cookie_policy_page_is_content_even_in_a_consent_named_wrapper() -> None:
    policy = "<p>This cookie policy explains which cookies we set, why, and how you can withdraw consent.</p>" * 6
    page = f"<html><body><div class='cookie-policy'><h1>Cookie policy</h1>{policy}</div></body></html>"
    result = extract(page, URL, want={"markdown"})
    assert result.markdown.startswith("# Cookie policy\n\nThis cookie policy explains")


def test_trafilatura_never_sees_the_consent_notice() -> None:
    """A product page (trafilatura's answer wins there) with a consent manager's privacy centre."""
    product = '<script type="application/ld+json">{"@type": "Product", "name": "Oak Stool"}</script>'
    description = (
        "<div class='description'><h1>Oak Stool</h1>"
        + "<p>A three-legged stool turned from solid oak, finished with hard wax oil and sized for a kitchen"
        " counter.</p>" * 3 + "</div>"
    )
    page = f"<html><head>{product}</head><body>{description}{_CONSENT_BANNER}</body></html>"
    result = extract(page, URL, want={"text"})
    assert "three-legged stool turned from solid oak" in result.text
    assert "privacy" not in result.text and "cookies" not in result.text


def test_blog_widgets_named_in_one_word_are_chrome() -> None:
    post = "<p>Sourdough needs a lively starter, a slow rise and a very hot oven to get its open crumb.</p>" * 3
    widgets = (
        "<div class='sharedaddy sd-block'><h3>Spread the word</h3><a href='/x'>Mastodon</a></div>"
        "<div class='jetpack-likes-widget-wrapper'>Like Loading...</div>"
        "<div id='jp-relatedposts' class='jp-relatedposts'><h3>More from the blog</h3>"
        "<p><a href='/rye'>Rye loaves for beginners and the flour they need</a></p></div>"
    )
    page = f"<html><body><div class='entry'><h1>Sourdough</h1>{post}{widgets}</div></body></html>"
    text = extract(page, URL, want={"text"}).text
    assert text.startswith("Sourdough\n\nSourdough needs a lively starter")
    for widget_text in ("Spread the word", "Mastodon", "Loading", "More from the blog", "Rye loaves"):
        assert widget_text not in text
