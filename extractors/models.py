"""Typed results of the extractors package (pydantic models shared with the service contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bump whenever the output for the same input can change (content choice, rendering, metadata rules):
# the service stores it with cached results so stale extractions can be recognised.
EXTRACTOR_VERSION = "2026.11.6"

FieldValue = str | int | float | bool | None | list[str | int | float | bool | None]


class Link(BaseModel):
    """One hyperlink of the page: absolute URL, visible text, same-site flag."""

    url: str
    text: str
    internal: bool


class PageMetadata(BaseModel):
    """Document-level metadata from <head>, OpenGraph/Twitter tags and JSON-LD."""

    title: str | None = None
    description: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    author: str | None = None
    published_date: str | None = None
    image: str | None = None
    opengraph: dict[str, str] = Field(default_factory=dict)
    json_ld: list[dict[str, Any]] = Field(default_factory=list)


class SelectorSpec(BaseModel):
    """How to pull one structured field out of the page with a CSS selector."""

    model_config = ConfigDict(extra="forbid")

    css: str
    attr: str | None = None
    all: bool = False
    type: Literal["string", "integer", "number", "boolean"] = "string"


class Extraction(BaseModel):
    """Everything `extract()` produces for one page."""

    title: str | None = None
    markdown: str = ""
    text: str = ""
    html: str = ""
    links: list[Link] = Field(default_factory=list)
    metadata: PageMetadata = Field(default_factory=PageMetadata)
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    main_content_found: bool = False
    warnings: list[str] = Field(default_factory=list)
    version: str = EXTRACTOR_VERSION
