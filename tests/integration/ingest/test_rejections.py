"""File-level problems refuse the whole upload, with the reference's error body; nothing is left behind."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from shared.mongo import database, make_client
from shared.settings import InfraSettings

from .conftest import UPLOAD_LIMIT, MakeTenant, Tenant

pytestmark = pytest.mark.integration


async def _start(
    http: AsyncClient, tenant: Tenant, content: bytes, **fields: str
) -> tuple[int, dict[str, object]]:
    response = await http.post(
        "/v1/batch-calls", headers=tenant.headers, files={"file": ("c.csv", content, "text/csv")}, data=fields
    )
    body = response.json()
    assert set(body) >= {"error", "message"}, body
    return response.status_code, body


@pytest.mark.parametrize(
    ("content", "status", "error", "says"),
    [
        (b"phone,name\n+14155550101,a\n", 400, "missing_phone_column", "phone_number"),
        (b"phone_number,name\n+14155550101,ok\n+14155550102,caf\xe9\n", 400, "invalid_encoding", "line 3"),
        (b"phone_number\n", 400, "empty_file", "no data rows"),
        (b"", 400, "empty_file", "empty"),
        (b'phone_number,name\n+14155550101,"open\n', 400, "malformed_csv", "line 2"),
    ],
)
async def test_file_problems(
    http: AsyncClient, tenant: Tenant, agent_id: str, content: bytes, status: int, error: str, says: str
) -> None:
    code, body = await _start(http, tenant, content, agentId=agent_id)
    assert (code, body["error"]) == (status, error)
    assert says in str(body["message"])


async def test_a_file_over_the_limit_is_413_while_streaming(
    http: AsyncClient, tenant: Tenant, agent_id: str
) -> None:
    row = b"+14155550101,some padding to make the file large enough\n"
    content = b"phone_number,note\n" + row * (UPLOAD_LIMIT // len(row) + 10)
    code, body = await _start(http, tenant, content, agentId=agent_id)
    assert code == 413 and body["error"] == "payload_too_large"


async def test_more_rows_than_the_plan_allows(
    http: AsyncClient, make_tenant: MakeTenant, gateway: str
) -> None:
    small = await make_tenant(max_records_per_batch=2)
    agent = await http.post("/v1/agents", headers=small.headers, json={"name": "a", "prompt": "hi"})
    content = b"phone_number\n+14155550101\n+14155550102\n+14155550103\n"
    code, body = await _start(http, small, content, agentId=agent.json()["id"])
    assert code == 400 and body["error"] == "too_many_records" and "allows 2" in str(body["message"])


async def test_unknown_or_foreign_agents_are_404(
    http: AsyncClient, tenant: Tenant, make_tenant: MakeTenant
) -> None:
    other = await make_tenant()
    foreign = await http.post("/v1/agents", headers=other.headers, json={"name": "theirs", "prompt": "hi"})
    content = b"phone_number\n+14155550101\n"
    for agent in ("agent_nope", foreign.json()["id"]):
        code, body = await _start(http, tenant, content, agentId=agent)
        assert code == 404 and body["error"] == "not_found"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scheduledAt": "next tuesday"}, "scheduledAt"),
        ({"smartCallbackConfig": "{not json"}, "smartCallbackConfig"),
        ({"callingWindow": '{"days": [9]}'}, "callingWindow"),
        ({"retryPolicy": '{"maxAttempts": 99}'}, "retryPolicy"),
        ({"webhookUrl": "file:///etc/passwd"}, "webhookUrl"),
        ({"dryRun": "perhaps"}, "dryRun"),
    ],
)
async def test_bad_options_name_the_field(
    http: AsyncClient, tenant: Tenant, agent_id: str, fields: dict[str, str], field: str
) -> None:
    code, body = await _start(http, tenant, b"phone_number\n+14155550101\n", agentId=agent_id, **fields)
    assert code == 400 and body["field"] == field and field in str(body["message"])


async def test_missing_parts(http: AsyncClient, tenant: Tenant, agent_id: str) -> None:
    no_file = await http.post(
        "/v1/batch-calls", headers=tenant.headers, data={"agentId": agent_id}, files={"x": ("a", b"b")}
    )
    assert no_file.status_code == 400 and "file" in no_file.json()["message"]
    code, body = await _start(http, tenant, b"phone_number\n+14155550101\n")
    assert code == 400 and "agentId" in str(body["message"])
    not_multipart = await http.post("/v1/batch-calls", headers=tenant.headers, json={"agentId": agent_id})
    assert not_multipart.status_code == 400


async def test_rejected_uploads_leave_no_stored_chunks(
    http: AsyncClient, tenant: Tenant, infra: InfraSettings
) -> None:
    code, _ = await _start(http, tenant, b"phone_number\n+14155550101\n", agentId="agent_missing")
    assert code == 404
    client = make_client(infra, "test-ingest-check")
    try:
        db = database(client, infra)
        batch_ids = {d["_id"] async for d in db["ingest_batches"].find({"workspace_id": tenant.workspace_id})}
        stored = {d["batch_id"] async for d in db["ingest_uploads"].find({}, {"batch_id": 1})}
        cursors = {d["_id"] async for d in db["ingest_cursors"].find({}, {"_id": 1})}
    finally:
        await client.close()
    assert stored <= cursors  # every stored upload belongs to an accepted batch
    assert not batch_ids
