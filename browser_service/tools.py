"""Tool definitions for function calling, generated from the contract's models (never by hand).

``GET /v1/tools`` serves them in the OpenAI (``{"type": "function", "function": …}``) and Anthropic
(``{"name", "description", "input_schema"}``) formats. The JSON schemas are the models' own, with
``$ref``s inlined because several function-calling clients do not resolve references. The MCP
server (``mcp_server.py``) lists the same tools, with the same schemas and descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from browser_service.contract import (
    CONTRACT_VERSION,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    SessionCreate,
    SessionDeleted,
    SessionInfo,
    SessionRef,
)

#: The tools' version. Tool definitions are generated from the contract, so a contract change is a
#: tool change; ``tests/integration/test_mcp.py`` pins the definitions' digest to this version so a
#: changed description or annotation bumps it too. MCP serves it in each tool's ``_meta``.
TOOL_VERSION = CONTRACT_VERSION


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its arguments are a contract model; the rest is what a model reads about it."""

    name: str
    title: str
    model: type[BaseModel]
    description: str
    #: MCP's openWorldHint: does the tool reach beyond the caller's input (the web)?
    open_world: bool
    #: What it answers (MCP's outputSchema).
    output: type[BaseModel] = FetchResponse
    #: MCP's readOnlyHint (false: it changes the service's state) and destructiveHint.
    read_only: bool = True
    destructive: bool = False


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "fetch",
        "Fetch a web page",
        FetchRequest,
        "Fetch a web page and return its main content as clean markdown (or text, html, links, "
        "metadata, a screenshot). Renders JavaScript when the page needs it. Long pages come in parts: "
        "when content.truncated is true, call again with start_index = content.next_start_index. "
        "On failure the result has ok=false and error.kind says exactly what went wrong (not_found, "
        "timeout, blocked, captcha, rate_limited, …) with error.message saying what to do; "
        "error.retryable and error.retry_after_s say whether and when to retry.",
        open_world=True,
    ),
    ToolSpec(
        "extract",
        "Extract content from HTML",
        ExtractRequest,
        "Extract clean main content (markdown, text, html), links, metadata and CSS-selected fields "
        "from HTML you already have. No network access; same result shape as fetch.",
        open_world=False,
    ),
    ToolSpec(
        "session_create",
        "Create a browsing session",
        SessionCreate,
        "Create a named session, so that later fetches share cookies and localStorage: sign in once "
        "(with fetch actions, e.g. type and press on a login form) and stay signed in. Returns its id: pass "
        "it as session to fetch. A session lasts ttl_s after its last use and survives a service restart; "
        "delete it with session_delete when the task is done.",
        open_world=False,
        output=SessionInfo,
        read_only=False,
    ),
    ToolSpec(
        "session_delete",
        "Delete a browsing session",
        SessionRef,
        "Delete a named session and everything it holds (cookies, localStorage). Fetches naming it "
        "fail with session_not_found afterwards.",
        open_world=False,
        output=SessionDeleted,
        read_only=False,
        destructive=True,
    ),
)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        # Drop the schema titles pydantic adds (noise in a prompt), not a property named "title", and
        # a discriminator's mapping onto $defs (each option names its "type" as a constant anyway).
        return {
            k: _inline(v, defs)
            for k, v in node.items()
            if k != "$defs"
            and not (k == "title" and isinstance(v, str))
            and not (k == "discriminator" and isinstance(v, dict) and "propertyName" in v)
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
    for tool in TOOLS:
        schema = parameters_schema(tool.model)
        openai.append(
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": schema},
            }
        )
        anthropic.append({"name": tool.name, "description": tool.description, "input_schema": schema})
    return {"version": TOOL_VERSION, "openai": openai, "anthropic": anthropic}
