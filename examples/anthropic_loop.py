"""A tool-use loop: a Claude model with browser-service as its web tool (Anthropic Messages API).

    ANTHROPIC_API_KEY=sk-ant-… python examples/anthropic_loop.py "What is on https://example.com/?"

The tools come from the service (``GET /v1/tools``, its ``"anthropic"`` list); each ``tool_use``
block is sent to ``POST /v1/<tool name>`` (``fetch``, ``extract``) with its input, and the answer
goes back in a ``tool_result`` block: the content, or ``ok: false`` with a typed error whose message
says what to do (then ``is_error: true``). Plain httpx on the documented wire format; with the
``anthropic`` package the request is ``client.messages.create(model=…, messages=…, tools=…)``.

Environment: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL (https://api.anthropic.com), ANTHROPIC_MODEL,
BROWSER_SERVICE_URL (http://127.0.0.1:8000), BROWSER_SERVICE_API_KEY (when the service has keys).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")
TOOLS = ("fetch", "extract")
SYSTEM = "Use the fetch tool to read web pages. If a fetch fails, read error.message and act on it."


def browser_service() -> httpx.Client:
    key = os.environ.get("BROWSER_SERVICE_API_KEY")
    return httpx.Client(
        base_url=os.environ.get("BROWSER_SERVICE_URL", "http://127.0.0.1:8000"),
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=330,  # a fetch ends within its timeout_ms (at most 300 s)
    )


def for_model(page: dict[str, Any]) -> str:
    """The parts of a FetchResponse a model needs (no attempts, hashes or versions)."""
    keep = ("ok", "url", "title", "markdown", "text", "links", "fields", "content", "stale", "warnings", "error")
    return json.dumps({k: page[k] for k in keep if page.get(k) is not None})


def call_tool(service: httpx.Client, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    """The tool's answer for the model, and whether it is an error."""
    if name not in TOOLS:
        return f"There is no tool {name!r}.", True
    page = service.post(f"/v1/{name}", json=arguments).json()  # every status has the FetchResponse shape
    return for_model(page), not page["ok"]


def run(question: str, max_turns: int = 10) -> str:
    llm = httpx.Client(
        base_url=os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
        headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"},
        timeout=120,
    )
    with browser_service() as service, llm:
        # The stateless tools; session_create/session_delete would map to POST/DELETE /v1/sessions.
        tools = [t for t in service.get("/v1/tools").raise_for_status().json()["anthropic"] if t["name"] in TOOLS]
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        for _ in range(max_turns):
            body = {"model": MODEL, "max_tokens": 4096, "system": SYSTEM, "tools": tools, "messages": messages}
            reply = llm.post("/v1/messages", json=body).raise_for_status().json()
            messages.append({"role": "assistant", "content": reply["content"]})
            if reply["stop_reason"] != "tool_use":
                return "".join(block["text"] for block in reply["content"] if block["type"] == "text")
            results = []
            for block in reply["content"]:
                if block["type"] == "tool_use":
                    text, failed = call_tool(service, block["name"], block["input"])
                    results.append(
                        {"type": "tool_result", "tool_use_id": block["id"], "content": text, "is_error": failed}
                    )
            messages.append({"role": "user", "content": results})
    raise RuntimeError(f"no answer after {max_turns} turns")


if __name__ == "__main__":
    print(run(" ".join(sys.argv[1:]) or "Summarise https://example.com/ in one sentence."))
