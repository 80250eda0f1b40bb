"""Server-Sent Events parsing."""

from __future__ import annotations

import pytest

from batchcalls_cli.sse import ServerSentEvent, parse_events

pytestmark = pytest.mark.unit


def test_events_with_ids_types_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "id: 7",
        "event: progress",
        'data: {"a":',
        "data: 1}",
        "",
        "data: plain",
        "retry: 3000",
        "",
        "",
    ]
    assert list(parse_events(lines)) == [
        ServerSentEvent("progress", '{"a":\n1}', "7"),
        ServerSentEvent("message", "plain", "7", 3000),
    ]


def test_a_final_event_without_blank_line_is_still_dispatched() -> None:
    assert list(parse_events(["data:x"])) == [ServerSentEvent("message", "x")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert list(parse_events(["event: ping", "", "id: 3", ""])) == []
