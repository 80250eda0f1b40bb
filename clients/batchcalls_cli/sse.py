"""Server-Sent Events parsing (the `text/event-stream` format), independent of any HTTP client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (`message` when unnamed), data lines joined by newlines, and id."""

    event: str
    data: str
    id: str | None = None
    retry_ms: int | None = None


def parse_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Turns the lines of an event stream into events, following the WHATWG rules (comments, multi-line data,
    `id`, `retry`); a blank line dispatches the pending event."""
    event = ""
    data: list[str] = []
    last_id: str | None = None
    retry_ms: int | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerSentEvent(event or "message", "\n".join(data), last_id, retry_ms)
            event, data, retry_ms = "", [], None
            continue
        if line.startswith(":"):
            continue  # a comment: servers send these as keep-alives
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry_ms = int(value)
    if data:
        yield ServerSentEvent(event or "message", "\n".join(data), last_id, retry_ms)
