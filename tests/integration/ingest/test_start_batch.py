"""Starting batches through the gateway, read back from real Kafka."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from shared.events import BatchAccepted, BatchIngested, ContactAccepted, ContactSkipped
from shared.outcomes import SkipReason

from .conftest import EventLog, Tenant

pytestmark = pytest.mark.integration

SEED_CSV = (
    "phone_number,first_name,last_name,email,custom_field_1,custom_field_2\n"
    "+1234567890,John,Doe,john.doe@example.com,Premium Customer,West Coast\n"
    "+1987654321,Jane,Smith,jane.smith@example.com,Standard Customer,East Coast\n"
)


def _done(messages: list[object]) -> bool:
    # BatchIngested travels on `batches`, the rows on `contacts`: a read may see the first before the second,
    # so wait until every row the batch reports is in.
    ingested = [m for m in messages if isinstance(m, BatchIngested)]
    rows = sum(1 for m in messages if isinstance(m, ContactAccepted | ContactSkipped))
    return bool(ingested) and rows >= ingested[0].total_rows


@pytest.mark.parametrize("prefix", ["/v1/batch-calls", "/v1/api/batch-calls"])
async def test_the_seed_request_starts_a_batch_under_both_prefixes(
    http: AsyncClient, tenant: Tenant, agent_id: str, events: EventLog, prefix: str
) -> None:
    response = await http.post(
        prefix,
        headers=tenant.headers,
        files={"file": ("your-contacts.csv", SEED_CSV.encode(), "text/csv")},
        data={"agentId": agent_id},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"batchId", "totalCalls", "status", "message"}
    assert body["batchId"].startswith("batch_") and body["totalCalls"] == 2
    assert (body["status"], body["message"]) == ("queued", "Batch calls initiated successfully")

    messages = await events.read(body["batchId"], _done)
    accepted = [m for m in messages if isinstance(m, BatchAccepted)]
    assert len(accepted) == 1 and accepted[0].agent.agent_id == agent_id
    assert accepted[0].agent.variables == ("first_name", "company", "region")
    contacts = [m for m in messages if isinstance(m, ContactSkipped | ContactAccepted)]
    # The seed's example numbers are not real numbers: recorded as skipped, never dialed.
    assert [(c.row_number, getattr(c, "reason", None)) for c in contacts] == [
        (1, SkipReason.INVALID_NUMBER),
        (2, SkipReason.INVALID_NUMBER),
    ]
    assert contacts[0].variables["custom_field_1"] == "Premium Customer"


async def test_every_row_ends_accepted_or_skipped_with_its_reason(
    http: AsyncClient, tenant: Tenant, agent_id: str, events: EventLog
) -> None:
    added = await http.post("/v1/dnc", headers=tenant.headers, json={"phone_number": "+44 20 7946 0958"})
    assert added.status_code == 200 and added.json() == {"phone_number": "+442079460958", "added": True}
    csv = (
        "\ufeffPhone_Number ,first_name,region\n"
        "+14155550101,Ann,West\n"
        "4155550102,Bob,West\n"  # no '+': the workspace's default region (US)
        "(415) 555-0101,Cy,West\n"  # the same number as row 1
        "+442079460958,Di,EMEA\n"  # do-not-call
        "12,Ed,nowhere\n"
        "\n"
        '+33142685300,Flo,"Paris, FR"\n'
    )
    response = await http.post(
        "/v1/batch-calls",
        headers=tenant.headers,
        files={"file": ("c.csv", csv.encode(), "text/csv")},
        data={
            "agentId": agent_id,
            "scheduledAt": "2030-01-01T09:00:00Z",
            "smartCallbackConfig": '{"enabled": true, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 4}]}',
            "callingWindow": '{"days": [0,1,2,3,4], "start": "09:00", "end": "18:00", "timezone": "UTC"}',
            "webhookUrl": "https://example.com/hooks/batch",
            "dryRun": "true",
            "name": "spring campaign",
        },
    )
    assert response.status_code == 200, response.text
    batch_id = response.json()["batchId"]
    assert response.json()["totalCalls"] == 6  # the blank line is not a row

    messages = await events.read(batch_id, _done)
    (accepted_event,) = [m for m in messages if isinstance(m, BatchAccepted)]
    assert accepted_event.dry_run and accepted_event.name == "spring campaign"
    assert accepted_event.retry_policy.max_attempts == 3 and accepted_event.retry_policy.gaps_seconds == (
        14_400,
    )
    assert accepted_event.calling_window is not None and accepted_event.calling_window.days == (0, 1, 2, 3, 4)
    assert accepted_event.scheduled_at is not None and accepted_event.scheduled_at.year == 2030
    contacts = {m.row_number: m for m in messages if isinstance(m, ContactAccepted | ContactSkipped)}
    assert sorted(contacts) == [1, 2, 3, 4, 5, 6]
    verdicts = {n: getattr(c, "reason", "accepted") for n, c in contacts.items()}
    assert verdicts == {
        1: "accepted",
        2: "accepted",
        3: SkipReason.DUPLICATE,
        4: SkipReason.DO_NOT_CALL,
        5: SkipReason.INVALID_NUMBER,
        6: "accepted",
    }
    assert contacts[2].phone_number == "+14155550102"
    assert contacts[6].variables == {"first_name": "Flo", "region": "Paris, FR"}
    assert all(c.contact_id == f"{batch_id}_r{n}" for n, c in contacts.items())
    (ingested,) = [m for m in messages if isinstance(m, BatchIngested)]
    assert (ingested.total_rows, ingested.accepted, ingested.skipped) == (6, 3, 3)


async def test_a_retried_post_with_the_same_idempotency_key_returns_the_same_batch(
    http: AsyncClient, tenant: Tenant, agent_id: str, events: EventLog
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "retry-me-1"}
    files = {"file": ("c.csv", b"phone_number\n+14155550101\n", "text/csv")}
    first = await http.post("/v1/batch-calls", headers=headers, files=files, data={"agentId": agent_id})
    second = await http.post("/v1/batch-calls", headers=headers, files=files, data={"agentId": agent_id})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    messages = await events.read(first.json()["batchId"], _done)
    assert sum(isinstance(m, BatchAccepted) for m in messages) == 1
    other = await http.post(
        "/v1/batch-calls",
        headers={**tenant.headers, "Idempotency-Key": "another"},
        files=files,
        data={"agentId": agent_id},
    )
    assert other.json()["batchId"] != first.json()["batchId"]
