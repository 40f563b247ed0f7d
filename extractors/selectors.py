"""Deterministic structured fields: CSS selector -> typed value.

Selectors run on lexbor (selectolax): its CSS engine supports modern selectors such as :has() and
:is(), and it validates a selector without needing a page, which the service uses to answer 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .dom import MAX_HTML_CHARS, absolute_url, collapse_ws
from .models import FieldValue, SelectorSpec

# Attributes holding a URL: their values are resolved against the page so callers get usable links.
_URL_ATTRS = frozenset(
    {"href", "src", "action", "poster", "cite", "data", "data-src", "data-href", "data-url", "formaction"}
)
_NUMBER = re.compile(r"[-+]?\d[\d.,\s\u00a0\u202f']*")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
_MAX_SELECTOR_CHARS = 2_000
_MAX_MATCHES = 1_000

Scalar = str | int | float | bool | None


def validate_selector(css: str) -> None:
    """Raise ValueError naming the problem when `css` is not a selector lexbor can run."""
    if not isinstance(css, str) or not css.strip():
        raise ValueError("CSS selector must be a non-empty string")
    if len(css) > _MAX_SELECTOR_CHARS:
        raise ValueError(f"CSS selector is longer than {_MAX_SELECTOR_CHARS} characters")
    try:
        LexborHTMLParser("<html><body></body></html>").css(css)
    except Exception as exc:  # selectolax raises its own error class; normalise to ValueError
        raise ValueError(f"invalid CSS selector {css!r}: {exc}") from None


def parse_selector_map(raw: Mapping[str, str | SelectorSpec | dict[str, Any]]) -> dict[str, SelectorSpec]:
    """Normalise a user selector map: a plain string means SelectorSpec(css=string).

    Raises ValueError (pydantic's ValidationError is one) naming the field when a spec is malformed or
    its selector is invalid.
    """
    out: dict[str, SelectorSpec] = {}
    for name, value in raw.items():
        if isinstance(value, SelectorSpec):
            spec = value
        elif isinstance(value, str):
            spec = SelectorSpec(css=value)
        elif isinstance(value, Mapping):
            spec = SelectorSpec.model_validate(dict(value))
        else:
            raise ValueError(f"selector {name!r}: expected a CSS string or an object, got {type(value).__name__}")
        try:
            validate_selector(spec.css)
        except ValueError as exc:
            raise ValueError(f"selector {name!r}: {exc}") from None
        out[name] = spec
    return out


def parse_number(text: str) -> float | None:
    """The first number in a text: '$1,299.00' -> 1299.0, '1.299,50 €' -> 1299.5, '-3' -> -3.0."""
    m = _NUMBER.search(text)
    if not m:
        return None
    token = re.sub(r"[\s\u00a0\u202f']", "", m.group(0)).rstrip(".,")
    sign = ""
    if token[:1] in "+-":
        sign, token = token[0], token[1:]
    if "," in token and "." in token:
        # Whichever separator comes last is the decimal one.
        if token.rfind(",") > token.rfind("."):
            token = token.replace(".", "").replace(",", ".")
        else:
            token = token.replace(",", "")
    elif "," in token:
        groups = token.split(",")
        token = token.replace(",", "") if all(len(g) == 3 for g in groups[1:]) else token.replace(",", ".")
    elif token.count(".") > 1:
        token = token.replace(".", "")
    try:
        return float(sign + token)
    except ValueError:
        return None


def convert(value: str, kind: str) -> tuple[Scalar, bool]:
    """Convert a raw string to the requested type; returns (value, ok)."""
    if kind == "string":
        return value, True
    if kind in ("integer", "number"):
        number = parse_number(value)
        if number is None:
            return None, False
        return (int(number) if kind == "integer" else number), True
    if kind == "boolean":
        word = value.strip().lower()
        if word in _TRUE:
            return True, True
        if word in _FALSE:
            return False, True
        return None, False
    return None, False


def _node_value(node: LexborNode, spec: SelectorSpec, base: str) -> str | None:
    if spec.attr is None:
        # textContent semantics (no separator) so '<span>$</span><span>12</span>' stays '$12'.
        return collapse_ws(node.text(deep=True, separator="", strip=False))
    value = node.attributes.get(spec.attr)
    if value is None:
        return None
    if spec.attr.lower() in _URL_ATTRS:
        return absolute_url(value, base) or value.strip()
    return collapse_ws(value)


def extract_fields(
    html: str, selectors: Mapping[str, SelectorSpec], base: str
) -> tuple[dict[str, FieldValue], list[str]]:
    """Run every selector; never raises. Returns (fields, warnings)."""
    fields: dict[str, FieldValue] = {}
    warnings: list[str] = []
    try:
        tree: LexborHTMLParser | None = LexborHTMLParser(html[:MAX_HTML_CHARS])
    except Exception:
        tree = None
    for name, spec in selectors.items():
        empty: FieldValue = [] if spec.all else None
        if tree is None:
            fields[name] = empty
            warnings.append(f"selector {name!r} matched nothing (page could not be parsed)")
            continue
        try:
            nodes = tree.css(spec.css)[:_MAX_MATCHES] if spec.all else [n for n in [tree.css_first(spec.css)] if n]
        except Exception as exc:
            fields[name] = empty
            warnings.append(f"selector {name!r} is invalid: {exc}")
            continue
        raw_values = [_node_value(n, spec, base) for n in nodes]
        present = [v for v in raw_values if v is not None]
        if not present:
            fields[name] = empty
            what = f"attribute {spec.attr!r} " if nodes and spec.attr else ""
            warnings.append(f"selector {name!r} matched nothing" if not what else f"selector {name!r}: {what}missing")
            continue
        converted: list[Scalar] = []
        failed: str | None = None
        for raw in present:
            value, ok = convert(raw, spec.type)
            if not ok and failed is None:
                failed = raw
            converted.append(value)
        if failed is not None:
            warnings.append(f"{spec.type} field {name!r} could not be parsed from {failed[:60]!r}")
        fields[name] = converted if spec.all else converted[0]
    return fields, warnings
