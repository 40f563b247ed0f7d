"""extract(): links of the whole page and document metadata."""

from __future__ import annotations

from extractors import Link, extract

PAGE = """<!DOCTYPE html>
<html lang="fr-CA">
<head>
  <base href="https://news.example/section/">
  <title>Fallback title</title>
  <meta name="description" content="  A   description
     over two lines. ">
  <meta name="author" content="Meta Author">
  <meta property="og:title" content="The OpenGraph Title">
  <meta property="og:site_name" content="Example News">
  <meta property="og:image" content="/img/cover.jpg">
  <meta property="og:type" content="article">
  <meta property="article:published_time" content="2026-03-04T10:30:00Z">
  <link rel="canonical" href="../story/42">
  <script type="application/ld+json">
  {"@context": "https://schema.org", "@graph": [
     {"@type": "WebSite", "name": "Example News Site"},
     {"@type": "NewsArticle", "headline": "Headline", "datePublished": "2026-03-01",
      "author": [{"@type": "Person", "name": "Ada Lovelace"}, {"@type": "Person", "name": "Alan Turing"}]}
  ]}
  </script>
  <script type="application/ld+json">{ this is not json </script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="https://other.example/x">Partner</a></nav>
  <p>Read <a href="page#part">a page</a>, <a href="page#part">the same page again</a>,
     <a href="#top">top</a>, <a href="javascript:void(0)">js</a>, <a href="mailto:a@b.example">mail</a>,
     <a href="tel:+123">phone</a>, <a href="//cdn.news.example/file.pdf"><img src="x.png" alt="PDF icon"></a>,
     <a href="https://blog.news.example/post" title="Blog"></a> and <a href="page">page</a>.</p>
</body>
</html>"""

URL = "https://news.example/section/story/42?utm=1"


def test_links_are_absolute_deduplicated_and_flagged() -> None:
    result = extract(PAGE, URL, want={"links"})
    assert result.links == [
        Link(url="https://news.example/", text="Home", internal=True),
        Link(url="https://other.example/x", text="Partner", internal=False),
        Link(url="https://news.example/section/page#part", text="a page", internal=True),
        Link(url="https://cdn.news.example/file.pdf", text="PDF icon", internal=True),
        Link(url="https://blog.news.example/post", text="Blog", internal=True),
        Link(url="https://news.example/section/page", text="page", internal=True),
    ]


def test_www_is_the_same_site() -> None:
    html = '<a href="https://www.shop.example/a">A</a><a href="https://shop.example.evil.test/">B</a>'
    links = extract(html, "https://shop.example/", want={"links"}).links
    assert [(link.url, link.internal) for link in links] == [
        ("https://www.shop.example/a", True),
        ("https://shop.example.evil.test/", False),
    ]


def test_metadata_from_meta_opengraph_and_json_ld() -> None:
    meta = extract(PAGE, URL, want={"metadata"}).metadata
    assert meta.title == "The OpenGraph Title"
    assert meta.description == "A description over two lines."
    assert meta.language == "fr-CA"
    assert meta.canonical_url == "https://news.example/story/42"
    assert meta.site_name == "Example News"
    assert meta.author == "Ada Lovelace, Alan Turing"  # JSON-LD beats <meta name=author>
    assert meta.published_date == "2026-03-04T10:30:00+00:00"  # article:published_time beats JSON-LD
    assert meta.image == "https://news.example/img/cover.jpg"
    assert meta.opengraph == {
        "og:title": "The OpenGraph Title",
        "og:site_name": "Example News",
        "og:image": "/img/cover.jpg",
        "og:type": "article",
    }
    assert [obj.get("@type") for obj in meta.json_ld] == ["WebSite", "NewsArticle"]


def test_metadata_fallbacks() -> None:
    html = """<html><head><title> Plain   title </title>
      <meta name="author" content="Meta Author">
      <script type="application/ld+json">{"@type": "BlogPosting", "datePublished": "March 5th, 2025"}</script>
      </head><body><p>x</p></body></html>"""
    meta = extract(html, "https://x.example/a", want={"metadata"}).metadata
    assert meta.title == "Plain title"
    assert meta.author == "Meta Author"
    assert meta.published_date == "2025-03-05"
    assert meta.language is None and meta.canonical_url is None and meta.site_name is None
    assert meta.opengraph == {}
    assert meta.json_ld == [{"@type": "BlogPosting", "datePublished": "March 5th, 2025"}]


def test_unparsable_date_is_kept_raw_and_h1_is_the_last_title_resort() -> None:
    html = '<html><head><meta name="date" content="sometime soon"></head><body><h1> Big  Heading </h1></body></html>'
    result = extract(html, "https://x.example/")
    assert result.metadata.published_date == "sometime soon"
    assert result.title == "Big Heading"
    assert result.metadata.title == "Big Heading"
