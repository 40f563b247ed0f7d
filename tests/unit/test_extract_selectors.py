"""Selector fields, selector validation and visible_text()."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from extractors import SelectorSpec, extract, parse_selector_map, validate_selector, visible_text

PRODUCT = """<html><body>
  <h1 class="name">  Super   Kettle </h1>
  <span class="price">$1,299.00</span>
  <span class="eu-price">1.299,50 €</span>
  <span class="stock">Yes</span>
  <span class="count">Only 7 left</span>
  <span class="broken">call us</span>
  <a class="more" href="/kettles/super?x=1">More</a>
  <img class="photo" src="//cdn.example/k.jpg" alt="Kettle">
  <ul class="tags"><li>steel</li><li> 1.7 l </li><li>fast</li></ul>
</body></html>"""
URL = "https://shop.example/p/1"


def fields_of(selectors: dict[str, SelectorSpec]) -> tuple[dict[str, object], list[str]]:
    result = extract(PRODUCT, URL, selectors=selectors, want=set())
    return dict(result.fields), result.warnings


def test_text_attr_and_all() -> None:
    fields, warnings = fields_of(
        {
            "name": SelectorSpec(css="h1.name"),
            "link": SelectorSpec(css="a.more", attr="href"),
            "image": SelectorSpec(css="img.photo", attr="src"),
            "alt": SelectorSpec(css="img.photo", attr="alt"),
            "tags": SelectorSpec(css="ul.tags li", all=True),
        }
    )
    assert fields == {
        "name": "Super Kettle",
        "link": "https://shop.example/kettles/super?x=1",
        "image": "https://cdn.example/k.jpg",
        "alt": "Kettle",
        "tags": ["steel", "1.7 l", "fast"],
    }
    assert warnings == []


def test_type_conversion() -> None:
    fields, warnings = fields_of(
        {
            "price_int": SelectorSpec(css=".price", type="integer"),
            "price": SelectorSpec(css=".price", type="number"),
            "eu": SelectorSpec(css=".eu-price", type="number"),
            "stock": SelectorSpec(css=".stock", type="boolean"),
            "count": SelectorSpec(css=".count", type="integer"),
            "sizes": SelectorSpec(css="ul.tags li", all=True, type="number"),
        }
    )
    assert fields == {
        "price_int": 1299,
        "price": 1299.0,
        "eu": 1299.5,
        "stock": True,
        "count": 7,
        "sizes": [None, 1.7, None],
    }
    assert warnings == ["number field 'sizes' could not be parsed from 'steel'"]


def test_conversion_failures_and_missing_matches_warn() -> None:
    fields, warnings = fields_of(
        {
            "n": SelectorSpec(css=".broken", type="integer"),
            "flag": SelectorSpec(css=".broken", type="boolean"),
            "price": SelectorSpec(css=".nothing-here"),
            "all_missing": SelectorSpec(css=".nothing-here", all=True),
            "no_attr": SelectorSpec(css="h1.name", attr="data-sku"),
        }
    )
    assert fields == {"n": None, "flag": None, "price": None, "all_missing": [], "no_attr": None}
    assert warnings == [
        "integer field 'n' could not be parsed from 'call us'",
        "boolean field 'flag' could not be parsed from 'call us'",
        "selector 'price' matched nothing",
        "selector 'all_missing' matched nothing",
        "selector 'no_attr': attribute 'data-sku' missing",
    ]


def test_boolean_words() -> None:
    html = "".join(f'<i class="b{n}">{word}</i>' for n, word in enumerate(["on", "OFF", "0", "true", "No"]))
    result = extract(
        html, URL, selectors={f"b{n}": SelectorSpec(css=f".b{n}", type="boolean") for n in range(5)}, want=()
    )
    assert result.fields == {"b0": True, "b1": False, "b2": False, "b3": True, "b4": False}


def test_validate_selector() -> None:
    validate_selector("div.a > span:nth-child(2)")
    validate_selector("article:has(h2)")
    for bad in ("[[[", "div >", "a:unknown-pseudo", "", "   "):
        with pytest.raises(ValueError):
            validate_selector(bad)


def test_parse_selector_map() -> None:
    parsed = parse_selector_map(
        {"title": "h1", "price": {"css": ".price", "type": "number"}, "spec": SelectorSpec(css="a", attr="href")}
    )
    assert parsed == {
        "title": SelectorSpec(css="h1"),
        "price": SelectorSpec(css=".price", type="number"),
        "spec": SelectorSpec(css="a", attr="href"),
    }
    with pytest.raises(ValueError, match="selector 'bad'"):
        parse_selector_map({"bad": "div >"})
    with pytest.raises(ValidationError):
        parse_selector_map({"x": {"css": "a", "colour": "red"}})  # unknown keys are rejected
    with pytest.raises(ValidationError):
        parse_selector_map({"x": {"css": "a", "type": "date"}})


def test_selectors_on_unparsable_page() -> None:
    result = extract("", URL, selectors={"x": SelectorSpec(css="h1"), "y": SelectorSpec(css="li", all=True)})
    assert result.fields == {"x": None, "y": []}
    assert "selector 'x' matched nothing" in result.warnings


def test_visible_text_ignores_invisible_elements() -> None:
    html = """<html><head><title>Title</title><style>p{color:red}</style></head><body>
      <p>Hello   <b>world</b></p><script>var hidden = 1;</script><noscript>Enable JS</noscript>
      <template><p>later</p></template><div>Second
      block</div></body></html>"""
    assert visible_text(html) == "Hello world Second block"
    assert visible_text("") == ""
    assert visible_text("<script>only()</script>") == ""
    assert visible_text("plain text") == "plain text"
