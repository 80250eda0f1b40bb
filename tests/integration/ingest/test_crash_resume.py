"""Crash safety: the upload is durable before the response; a killed ingest resumes publishing on restart,
and every row ends up on Kafka (contact ids are deterministic, so a block sent twice is the same contacts)."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from shared.events import BatchIngested, ContactAccepted, ContactSkipped

from .conftest import EventLog, IngestServer, MakeTenant

pytestmark = pytest.mark.integration

ROWS = 6_000


async def test_a_killed_ingest_resumes_and_loses_no_row(
    http: AsyncClient, make_tenant: MakeTenant, ingest_server: IngestServer, events: EventLog
) -> None:
    tenant = await make_tenant(max_records_per_batch=ROWS)
    agent = await http.post("/v1/agents", headers=tenant.headers, json={"name": "a", "prompt": "Hi {n}"})
    lines = [
        f"+1415{5550000 + i % 9000:07d},{i}" for i in range(ROWS)
    ]  # with duplicates beyond 9000? no: 6000 rows
    content = ("phone_number,n\n" + "\n".join(lines) + "\n").encode()
    response = await http.post(
        "/v1/batch-calls",
        headers=tenant.headers,
        files={"file": ("big.csv", content, "text/csv")},
        data={"agentId": agent.json()["id"]},
    )
    assert response.status_code == 200, response.text
    batch_id = response.json()["batchId"]
    ingest_server.kill()  # right after the answer: publishing is (almost surely) midway
    ingest_server.start()

    def complete(messages: list[object]) -> bool:
        return any(isinstance(m, BatchIngested) for m in messages)

    messages = await events.read(batch_id, complete, deadline_s=240)
    rows = [m.row_number for m in messages if isinstance(m, ContactAccepted | ContactSkipped)]
    assert set(rows) == set(range(1, ROWS + 1))  # nothing lost
    ingested = [m for m in messages if isinstance(m, BatchIngested)][-1]
    assert ingested.total_rows == ROWS and ingested.accepted + ingested.skipped == ROWS
