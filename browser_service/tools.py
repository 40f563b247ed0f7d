"""Tool definitions for function calling, generated from the contract's models (never by hand).

``GET /v1/tools`` serves them in the OpenAI (``{"type": "function", "function": …}``) and Anthropic
(``{"name", "description", "input_schema"}``) formats. The JSON schemas are the models' own, with
``$ref``s inlined because several function-calling clients do not resolve references.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from browser_service.contract import CONTRACT_VERSION, ExtractRequest, FetchRequest

_TOOLS: tuple[tuple[str, type[BaseModel], str], ...] = (
    (
        "fetch",
        FetchRequest,
        "Fetch a web page and return its main content as clean markdown (or text, html, links, "
        "metadata, a screenshot). Renders JavaScript when the page needs it. Long pages come in parts: "
        "when content.truncated is true, call again with start_index = content.next_start_index. "
        "On failure the result has ok=false and error.kind says exactly what went wrong (not_found, "
        "timeout, blocked, captcha, rate_limited, …) with error.message saying what to do; "
        "error.retryable and error.retry_after_s say whether and when to retry.",
    ),
    (
        "extract",
        ExtractRequest,
        "Extract clean main content (markdown, text, html), links, metadata and CSS-selected fields "
        "from HTML you already have. No network access; same result shape as fetch.",
    ),
)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        # Drop the schema titles pydantic adds (noise in a prompt), not a property named "title".
        return {
            k: _inline(v, defs)
            for k, v in node.items()
            if k != "$defs" and not (k == "title" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    inlined["additionalProperties"] = False
    return inlined


def tool_definitions() -> dict[str, Any]:
    openai = []
    anthropic = []
    for name, model, description in _TOOLS:
        schema = parameters_schema(model)
        openai.append(
            {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}
        )
        anthropic.append({"name": name, "description": description, "input_schema": schema})
    return {"version": CONTRACT_VERSION, "openai": openai, "anthropic": anthropic}
