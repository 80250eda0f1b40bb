"""An in-memory stand-in for the public API, served through `httpx.MockTransport`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

KEY = "bck_test_secret"
WORKSPACE = "ws_test"


def status_body(batch_id: str, status: str, total: int, **counts: int) -> dict[str, Any]:
    """The flattened `/status` shape of the reference."""
    body: dict[str, Any] = {
        "id": batch_id,
        "status": status,
        "isComplete": status in ("completed", "cancelled", "failed"),
        "totalCalls": total,
        "waiting": 0,
        "active": 0,
        "completed": 0,
        "failed": 0,
        "total": total,
        "startTime": 1_767_225_600_000,
        "lastCompletedTime": None,
        "completedTime": None,
        "averageCallDuration": 0,
        "recent_calls": [],
        "timestamp": 1_767_225_600_000,
    }
    body.update(counts)
    return body


@dataclass
class FakeApi:
    """Routes requests by method and path; records every request it saw."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    """Successive `/status` answers; the last one repeats."""
    stream: list[str] | None = None
    """Raw SSE lines for `/events`; None answers 404 (no stream: the client must poll)."""
    requests: list[httpx.Request] = field(default_factory=list)
    uploads: list[dict[str, str]] = field(default_factory=list)
    responses: dict[tuple[str, str], httpx.Response] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if key in self.responses:
            return self.responses[key]
        if request.headers.get("x-api-key") != KEY:
            return httpx.Response(401, json={"error": "unauthorized", "message": "invalid API key"})
        if request.headers.get("x-workspace-id") != WORKSPACE:
            return httpx.Response(403, json={"error": "forbidden", "message": "not your workspace"})
        path = request.url.path
        if request.method == "POST" and path in ("/v1/batch-calls", "/v1/batch-calls/validate"):
            self.uploads.append(_form_fields(request))
            if path.endswith("validate"):
                if ("POST", path) in self.responses:
                    return self.responses[("POST", path)]
                return httpx.Response(200, json=VALIDATION)
            return httpx.Response(
                200,
                json={
                    "batchId": "batch_abc",
                    "totalCalls": 3,
                    "status": "queued",
                    "message": "Batch calls initiated successfully",
                },
            )
        if path == "/v1/agents/agent_1":
            return httpx.Response(200, json=AGENT)
        if path.endswith("/status"):
            if not self.statuses:
                return httpx.Response(404, json={"error": "not_found", "message": "no such batch"})
            body = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200, json=body)
        if path.endswith("/events"):
            if self.stream is None:
                return httpx.Response(404, json={"error": "not_found", "message": "no stream"})
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=_Lines(self.stream)
            )
        return httpx.Response(404, json={"error": "not_found", "message": f"no route {path}"})


class _Lines(httpx.SyncByteStream):
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._lines:
            yield (line + "\n").encode()


def _form_fields(request: httpx.Request) -> dict[str, str]:
    """The text fields and the file's name and size of a multipart body (enough for assertions)."""
    body = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields: dict[str, str] = {}
    for part in body.split(b"--" + boundary):
        head, _, content = part.partition(b"\r\n\r\n")
        if b'name="' not in head:
            continue
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        value = content.removesuffix(b"\r\n")
        if b"filename=" in head:
            fields[name] = f"<file {len(value)} bytes>"
            fields["file_content"] = value.decode()
        else:
            fields[name] = value.decode()
    return fields


VALIDATION: dict[str, Any] = {
    "valid": True,
    "totalRows": 3,
    "counts": {"valid": 2, "invalid": 1, "duplicate": 0, "doNotCall": 0},
    "columns": ["phone_number", "first_name"],
    "variables": ["first_name"],
    "errors": [
        {
            "row": 2,
            "line": 3,
            "column": "phone_number",
            "code": "invalid_number",
            "message": "not a phone number",
            "value": "12",
        }
    ],
    "preview": [{"row": 1, "phone_number": "+14155550100", "variables": {"first_name": "Ada"}}],
    "warnings": ["no column provides the agent variable(s) company; the prompt renders them as empty"],
}
"""The ingest service's validation answer (services/ingest/entrypoints/schemas.py)."""

AGENT: dict[str, Any] = {
    "id": "agent_1",
    "name": "Reminder",
    "prompt": "Hi {first_name} from {company}",
    "callerId": "+14155550199",
    "defaults": {},
    "missingVariable": "empty",
    "maxCallSeconds": 600,
    "variables": ["first_name", "company"],
    "createdAt": 1_767_225_600_000,
}


def sse(event: str, data: dict[str, Any], event_id: str) -> list[str]:
    return [f"id: {event_id}", f"event: {event}", f"data: {json.dumps(data)}", ""]
