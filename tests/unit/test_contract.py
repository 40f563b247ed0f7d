from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from browser_service.contract import (
    CONTRACT_VERSION,
    MAX_ACTIONS,
    ErrorBody,
    ErrorKind,
    ExtractRequest,
    FetchRequest,
    FetchResponse,
    SessionCreate,
    SessionDeleted,
    SessionInfo,
    SessionRef,
)
from browser_service.errors import ERROR_CLASSES, FetchError, RequestError, ServiceError, UpstreamError, from_info
from browser_service.tools import tool_definitions


def test_defaults() -> None:
    request = FetchRequest(url="https://example.com/a")  # type: ignore[arg-type]
    assert request.formats == ["markdown"] and request.render == "auto" and request.main_content
    assert request.timeout_ms == 30_000 and request.max_chars == 20_000 and request.start_index == 0
    assert request.primary_text_format() == "markdown" and not request.needs_browser()


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        FetchRequest.model_validate({"url": "https://example.com/", "fromats": ["text"]})
    assert info.value.errors()[0]["loc"] == ("fromats",)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "https://example.com/", "formats": ["pdf"]}, "formats"),
        ({"url": "https://example.com/", "formats": []}, "formats"),
        ({"url": "https://example.com/", "render": "chrome"}, "render"),
        ({"url": "https://example.com/", "timeout_ms": 10}, "timeout_ms"),
        ({"url": "https://example.com/", "max_chars": 5}, "max_chars"),
        ({"url": "https://example.com/", "start_index": -1}, "start_index"),
        ({"url": "https://example.com/", "wait_for": "div[["}, "wait_for"),
        ({"url": "https://example.com/", "selectors": {"price": "..bad"}}, "selectors"),
        ({"url": "https://example.com/", "headers": {"Bad Name": "x"}}, "headers"),
        ({"url": "https://example.com/", "headers": {"Host": "evil"}}, "headers"),
        ({"url": "https://example.com/", "cookies": {"a": "b;c"}}, "cookies"),
        ({"url": "https://example.com/", "session": "../etc/passwd"}, "session"),
        ({"url": "https://example.com/", "render": "http", "actions": [{"type": "click", "selector": "a"}]}, "actions"),
        ({"url": "https://example.com/", "actions": [{"type": "hover", "selector": "a"}]}, "actions"),
        ({"url": "https://example.com/", "actions": [{"type": "click", "selector": "a[["}]}, "actions"),
        ({"url": "https://example.com/", "actions": [{"type": "wait_ms", "ms": 30_001}]}, "actions"),
        ({"url": "https://example.com/", "actions": [{"type": "scroll", "to": "middle"}]}, "actions"),
        ({"url": "https://example.com/", "actions": [{"type": "wait_ms", "ms": 1}] * (MAX_ACTIONS + 1)}, "actions"),
    ],
)
def test_invalid_fields_are_named(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FetchRequest.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field


def test_formats_are_deduplicated_in_order_and_screenshot_needs_browser() -> None:
    request = FetchRequest.model_validate(
        {"url": "https://example.com/", "formats": ["links", "text", "links", "screenshot"]}
    )
    assert request.formats == ["links", "text", "screenshot"]
    assert request.primary_text_format() == "text" and request.needs_browser()


def test_selectors_accept_strings_and_specs() -> None:
    request = FetchRequest.model_validate(
        {"url": "https://e.com/", "selectors": {"t": "h1", "n": {"css": ".n", "type": "integer", "all": True}}}
    )
    specs = request.selector_specs()
    assert specs["t"].css == "h1" and specs["t"].type == "string"
    assert specs["n"].type == "integer" and specs["n"].all


def test_extract_request_refuses_screenshot() -> None:
    with pytest.raises(ValidationError, match="screenshot needs a fetch"):
        ExtractRequest.model_validate({"html": "<p>x</p>", "url": "https://e.com/", "formats": ["screenshot"]})


def test_error_classes_cover_the_closed_enum_once() -> None:
    assert set(ERROR_CLASSES) == set(ErrorKind)
    for kind, cls in ERROR_CLASSES.items():
        assert cls.kind is kind
        assert issubclass(cls, RequestError | UpstreamError | ServiceError)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("invalid_request", 422),
        ("forbidden_target", 403),
        ("robots_disallowed", 403),
        ("session_not_found", 404),
        ("action_failed", 422),
        ("dns_error", 502),
        ("not_found", 502),
        ("http_error", 502),
        ("timeout", 504),
        ("overloaded", 503),
        ("circuit_open", 503),
        ("browser_error", 503),
        ("internal_error", 500),
    ],
)
def test_http_status_mapping(kind: str, status: int) -> None:
    assert ERROR_CLASSES[ErrorKind(kind)].http_status == status


def test_error_round_trips_through_wire_form() -> None:
    error: FetchError = ERROR_CLASSES[ErrorKind.OVERLOADED]("busy", retry_after_s=2.5)
    again = from_info(error.info())
    assert type(again) is type(error) and again.retry_after_s == 2.5 and again.retryable


def test_tools_are_generated_from_the_models() -> None:
    tools = tool_definitions()
    assert tools["version"] == CONTRACT_VERSION
    names = [t["function"]["name"] for t in tools["openai"]]
    assert names == ["fetch", "extract", "session_create", "session_delete"] == [t["name"] for t in tools["anthropic"]]
    fetch_schema = tools["openai"][0]["function"]["parameters"]
    assert fetch_schema == tools["anthropic"][0]["input_schema"]
    assert fetch_schema["required"] == ["url"] and fetch_schema["additionalProperties"] is False
    assert set(fetch_schema["properties"]) == set(FetchRequest.model_fields)
    assert "$ref" not in json.dumps(tools) and "$defs" not in json.dumps(tools)
    # the selector spec was inlined, with its fields
    selector_options = fetch_schema["properties"]["selectors"]["anyOf"][0]["additionalProperties"]["anyOf"]
    assert any(option.get("properties", {}).get("css") for option in selector_options)
    # the actions' union was inlined: one option per step type, each naming its type
    steps = fetch_schema["properties"]["actions"]["anyOf"][0]["items"]["oneOf"]
    assert [step["properties"]["type"]["const"] for step in steps] == [
        "click",
        "type",
        "press",
        "scroll",
        "wait_for",
        "wait_ms",
        "scroll_until_stable",
    ]


def test_actions_parse_and_imply_the_browser() -> None:
    request = FetchRequest.model_validate(
        {"url": "https://e.com/", "actions": [{"type": "click", "selector": "#more"}, {"type": "scroll", "to": 400}]}
    )
    assert request.needs_browser() and request.actions is not None
    assert [a.type for a in request.actions] == ["click", "scroll"]
    assert request.actions[0].model_dump() == {"type": "click", "selector": "#more", "timeout_ms": 5000}


#: The schema digest each contract version was released with. A change of the request or response
#: schema fails this test until CONTRACT_VERSION is bumped and the new pair is added here.
RELEASED = {
    "1.0.0": "c2ddc9bb2d84c3a6",
    "1.1.0": "0e9df150b77c2d1d",  # on_suspect, respect_robots; ErrorInfo.quarantine_id
    # session, actions; ErrorInfo.step; session_not_found, action_failed; phase action; the session models
    "1.2.0": "237f77f6a9be55dd",
}


def test_contract_change_bumps_version() -> None:
    models = [FetchRequest, ExtractRequest, FetchResponse]
    if tuple(map(int, CONTRACT_VERSION.split("."))) >= (1, 2, 0):  # from 1.2.0 on, the session models too
        models += [SessionCreate, SessionRef, SessionInfo, SessionDeleted, ErrorBody]
    schemas = json.dumps([model.model_json_schema() for model in models], sort_keys=True)
    digest = hashlib.sha256(schemas.encode()).hexdigest()[:16]
    assert RELEASED.get(CONTRACT_VERSION) == digest, (
        f"the contract schema changed (digest {digest}): bump CONTRACT_VERSION and record it in RELEASED"
    )
