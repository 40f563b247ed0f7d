"""A batch's NDJSON lines stay one line each for every reader, whatever text an answer echoes."""

from __future__ import annotations

from browser_service.batch import BatchItem, ndjson_line
from browser_service.contract import ErrorInfo, FetchResponse


def test_line_separators_inside_a_message_are_escaped_and_read_back_unchanged() -> None:
    # What a fuzzer sent as an action's type, echoed in the invalid_request message.
    message = "Invalid request: actions.0: Input tag '\u2028\x85\u2029' found using 'type' does not match"
    error = ErrorInfo(kind="invalid_request", message=message, retryable=False)
    item = BatchItem(index=0, response=FetchResponse(ok=False, url="http://example.test/", error=error, trace_id="t"))
    line = ndjson_line(item)
    assert line.endswith("\n") and line.splitlines() == [line[:-1]]  # str.splitlines splits on all three
    assert "\\u2028" in line and "\\u0085" in line and "\\u2029" in line
    read = BatchItem.model_validate_json(line)
    assert read == item and read.response.error is not None and read.response.error.message == message
