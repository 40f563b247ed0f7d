"""The README's tool-use loops (``examples/``), run as a user runs them: against the real service
(uvicorn on 127.0.0.1, with an API key) and a loopback fake of the model's API that speaks the
documented wire format — it asks for three tool calls (a page, a missing page, a misspelt
argument), then answers from the tool results it was sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.integration.test_api import running
from tests.site import FixtureServer

ROOT = Path(__file__).resolve().parents[2]
SERVICE_KEY = "examples-key"


class FakeModel(ThreadingHTTPServer):
    """Scripted Chat Completions (``/v1/chat/completions``) and Messages (``/v1/messages``) APIs."""

    daemon_threads = True

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _ModelHandler)
        self.calls = calls  # the tool calls of the first turn (arguments)
        self.seen: list[tuple[str, dict[str, str], dict[str, Any]]] = []  # path, headers, body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ModelHandler(BaseHTTPRequestHandler):
    server: FakeModel

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        reply = self.openai(body) if self.path == "/v1/chat/completions" else self.anthropic(body)
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def openai(self, body: dict[str, Any]) -> dict[str, Any]:
        results = {m["tool_call_id"]: json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"}
        if not results:
            calls = [
                {"id": f"call_{i}", "type": "function", "function": {"name": "fetch", "arguments": json.dumps(args)}}
                for i, args in enumerate(self.server.calls)
            ]
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": calls, "refusal": None}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": final([results[f"call_{i}"] for i in range(len(results))])}
            finish = "stop"
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last["content"], list) else []  # a question is a plain string
        results = [b for b in blocks if b["type"] == "tool_result"]
        if not results:
            content: list[dict[str, Any]] = [{"type": "text", "text": "Let me read those pages."}]
            content += [
                {"type": "tool_use", "id": f"toolu_{i}", "name": "fetch", "input": args}
                for i, args in enumerate(self.server.calls)
            ]
            stop = "tool_use"
        else:
            by_id = {b["tool_use_id"]: json.loads(b["content"]) for b in results}
            content = [{"type": "text", "text": final([by_id[f"toolu_{i}"] for i in range(len(by_id))])}]
            stop = "end_turn"
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }


def final(pages: list[dict[str, Any]]) -> str:
    """The scripted answer: what the model learnt from each tool result."""
    return "; ".join(page["title"] if page["ok"] else page["error"]["kind"] for page in pages)


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("examples"), pool_size=1, api_keys=[SERVICE_KEY])
    async with running(settings) as (client, _):
        yield str(client.base_url)


@pytest.fixture
def model(site: FixtureServer) -> Iterator[FakeModel]:
    calls = [
        {"url": site.url("/article.html")},
        {"url": site.url("/no-such-page")},
        {"url": site.url("/article.html"), "fromats": ["text"]},  # the model misspelt a field
    ]
    server = FakeModel(calls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def run_example(name: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / name),
        "What do these pages say?",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().strip()


EXPECTED = "How Lighthouses Work; not_found; invalid_request"


async def test_openai_loop(service: str, model: FakeModel) -> None:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": f"{model.url}/v1",
        "BROWSER_SERVICE_URL": service,
        "BROWSER_SERVICE_API_KEY": SERVICE_KEY,
    }
    assert await run_example("openai_loop.py", env) == EXPECTED
    assert [path for path, _, _ in model.seen] == ["/v1/chat/completions"] * 2
    first, second = (body for _, _, body in model.seen)
    assert all(headers["authorization"] == "Bearer sk-test" for _, headers, _ in model.seen)
    async with httpx.AsyncClient(base_url=service, headers={"Authorization": f"Bearer {SERVICE_KEY}"}) as client:
        tools = (await client.get("/v1/tools")).json()
    offered = [t for t in tools["openai"] if t["function"]["name"] in ("fetch", "extract")]
    assert first["tools"] == offered and [t["function"]["name"] for t in offered] == ["fetch", "extract"]
    # The second turn carries the assistant's tool calls, then one role=tool message per call.
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "tool", "tool"]
    assert [m["tool_call_id"] for m in second["messages"][3:]] == ["call_0", "call_1", "call_2"]
    typo = json.loads(second["messages"][5]["content"])
    assert "fromats: unknown field" in typo["error"]["message"]
    assert "attempts" not in typo and "versions" not in typo  # trimmed for the model's context


async def test_anthropic_loop(service: str, model: FakeModel) -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": model.url,
        "BROWSER_SERVICE_URL": service,
        "BROWSER_SERVICE_API_KEY": SERVICE_KEY,
    }
    assert await run_example("anthropic_loop.py", env) == EXPECTED
    assert [path for path, _, _ in model.seen] == ["/v1/messages"] * 2
    for _, headers, _ in model.seen:
        assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
    first, second = (body for _, _, body in model.seen)
    assert {t["name"] for t in first["tools"]} == {"fetch", "extract"} and "input_schema" in first["tools"][0]
    assert first["max_tokens"] > 0 and first["messages"] == [{"role": "user", "content": "What do these pages say?"}]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    results = second["messages"][2]["content"]
    assert [(r["type"], r["tool_use_id"], r["is_error"]) for r in results] == [
        ("tool_result", "toolu_0", False),
        ("tool_result", "toolu_1", True),
        ("tool_result", "toolu_2", True),
    ]


@pytest.mark.parametrize("name", ["openai_loop.py", "anthropic_loop.py"])
def test_readme_shows_the_examples_as_they_are(name: str) -> None:
    """A README block headed ``# examples/NAME (excerpt)`` must be the file's text, verbatim."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(rf"```python\n# examples/{re.escape(name)} \(excerpt\)\n(.*?)```", readme, re.S)
    assert blocks, f"the README shows no excerpt of examples/{name}"
    source = (ROOT / "examples" / name).read_text()
    for block in blocks:
        assert block in source
