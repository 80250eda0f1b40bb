"""The HTTP client against a MockTransport: headers, uploads, errors, streams."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from batchcalls_cli.client import ApiFailure, BatchCallsClient, Connection, Unreachable
from tests.unit.cli.fake_api import KEY, WORKSPACE, FakeApi, sse, status_body

pytestmark = pytest.mark.unit


def client_for(api: FakeApi, key: str = KEY) -> BatchCallsClient:
    return BatchCallsClient(Connection("http://api.test/", key, WORKSPACE), api.transport())


def test_every_request_carries_key_and_workspace() -> None:
    api = FakeApi(statuses=[status_body("batch_1", "processing", 1)])
    with client_for(api) as client:
        client.batch_status("batch_1")
    sent = api.requests[0]
    assert sent.url.path == "/v1/batch-calls/batch_1/status"
    assert (sent.headers["x-api-key"], sent.headers["x-workspace-id"]) == (KEY, WORKSPACE)


def test_the_api_error_body_becomes_an_api_failure() -> None:
    api = FakeApi()
    with client_for(api, key="wrong") as client, pytest.raises(ApiFailure) as caught:
        client.batch("batch_1")
    assert (caught.value.status, caught.value.error, caught.value.message) == (
        401,
        "unauthorized",
        "invalid API key",
    )


def test_a_429_keeps_its_retry_after() -> None:
    api = FakeApi()
    api.responses[("GET", "/v1/batch-calls/batch_1")] = httpx.Response(
        429, headers={"retry-after": "7"}, json={"error": "rate_limited", "message": "slow down"}
    )
    with client_for(api) as client, pytest.raises(ApiFailure) as caught:
        client.batch("batch_1")
    assert caught.value.retry_after == "7"


def test_a_non_json_error_still_reads() -> None:
    api = FakeApi()
    api.responses[("GET", "/v1/batch-calls/batch_1")] = httpx.Response(502, text="<html>Bad Gateway</html>")
    with client_for(api) as client, pytest.raises(ApiFailure) as caught:
        client.batch("batch_1")
    assert caught.value.status == 502 and "Bad Gateway" in caught.value.message


def test_connection_refused_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = BatchCallsClient(Connection("http://api.test", KEY, WORKSPACE), httpx.MockTransport(refuse))
    with client, pytest.raises(Unreachable, match="cannot reach"):
        client.agents()


def test_upload_sends_the_file_and_the_form_fields_and_reports_progress(tmp_path: Path) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text("phone_number,first_name\n+14155550100,Ada\n")
    api = FakeApi()
    seen: list[int] = []
    with client_for(api) as client:
        body = client.start(
            csv, {"agentId": "agent_1", "scheduledAt": "2026-05-01T09:00:00Z"}, seen.append, "k1"
        )
    assert body["batchId"] == "batch_abc"
    fields = api.uploads[0]
    assert fields["agentId"] == "agent_1" and fields["scheduledAt"] == "2026-05-01T09:00:00Z"
    assert fields["file_content"] == csv.read_text()
    assert sum(seen) == csv.stat().st_size
    assert api.requests[0].headers["idempotency-key"] == "k1"
    assert int(api.requests[0].headers["content-length"]) > csv.stat().st_size


def test_export_streams_into_the_destination() -> None:
    api = FakeApi()
    api.responses[("GET", "/v1/batch-calls/batch_1/export")] = httpx.Response(
        200, headers={"content-type": "text/csv"}, content=b"jobId,status\nbatch_1_r1,completed\n"
    )
    sink = io.BytesIO()
    with client_for(api) as client:
        written = client.export("batch_1", sink)
    assert sink.getvalue().startswith(b"jobId,status") and written == len(sink.getvalue())


def test_events_are_parsed_from_the_stream() -> None:
    api = FakeApi(stream=sse("progress", {"completed": 1}, "1") + sse("call.ended", {"jobId": "x"}, "2"))
    with client_for(api) as client:
        events = list(client.events("batch_1", last_event_id="0"))
    assert [(e.event, e.id) for e in events] == [("progress", "1"), ("call.ended", "2")]
    assert api.requests[0].headers["last-event-id"] == "0"


def test_ids_are_quoted_into_paths() -> None:
    api = FakeApi()
    api.responses[("DELETE", "/v1/dnc/+14155550100")] = httpx.Response(200, json={"removed": True})
    with client_for(api) as client:
        assert client.remove_dnc("+14155550100") == {"removed": True}
    assert api.requests[0].url.raw_path == b"/v1/dnc/%2B14155550100"
