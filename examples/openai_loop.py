"""A tool-use loop: an OpenAI chat model with browser-service as its web tool (Chat Completions API).

    OPENAI_API_KEY=sk-… python examples/openai_loop.py "What is on https://example.com/?"

The tools come from the service (``GET /v1/tools``, its ``"openai"`` list); each tool call is sent
to ``POST /v1/<tool name>`` (``fetch``, ``extract``) with the model's arguments as they are, and the
answer goes back as the ``role: tool`` message: the content, or ``ok: false`` with a typed error
whose message says what to do (an invalid argument comes back as ``invalid_request`` naming the
field, so the model can fix it). Plain httpx on the documented wire format; with the ``openai``
package the request is ``client.chat.completions.create(model=…, messages=…, tools=…)``.

Environment: OPENAI_API_KEY, OPENAI_BASE_URL (https://api.openai.com/v1), OPENAI_MODEL,
BROWSER_SERVICE_URL (http://127.0.0.1:8000), BROWSER_SERVICE_API_KEY (when the service has keys).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
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


def call_tool(service: httpx.Client, name: str, arguments: str) -> str:
    if name not in TOOLS:
        return json.dumps({"ok": False, "error": {"message": f"There is no tool {name!r}."}})
    answer = service.post(f"/v1/{name}", content=arguments, headers={"content-type": "application/json"})
    return for_model(answer.json())  # every status has the FetchResponse shape


def run(question: str, max_turns: int = 10) -> str:
    llm = httpx.Client(
        base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"},
        timeout=120,
    )
    with browser_service() as service, llm:
        # The stateless tools; session_create/session_delete would map to POST/DELETE /v1/sessions.
        offered = service.get("/v1/tools").raise_for_status().json()["openai"]
        tools = [t for t in offered if t["function"]["name"] in TOOLS]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
        ]
        for _ in range(max_turns):
            body = {"model": MODEL, "messages": messages, "tools": tools}
            message = llm.post("/chat/completions", json=body).raise_for_status().json()["choices"][0]["message"]
            calls = message.get("tool_calls")
            if not calls:
                return str(message.get("content") or "")
            messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
            for call in calls:
                result = call_tool(service, call["function"]["name"], call["function"]["arguments"])
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    raise RuntimeError(f"no answer after {max_turns} turns")


if __name__ == "__main__":
    print(run(" ".join(sys.argv[1:]) or "Summarise https://example.com/ in one sentence."))
