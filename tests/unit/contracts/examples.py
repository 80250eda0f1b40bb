"""One fully populated, fixed example of every message type: the inputs of the golden tests."""

from __future__ import annotations

from datetime import UTC, datetime, time
from uuid import UUID

from shared import events as ev
from shared.outcomes import Outcome, SkipReason

AT = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
ENVELOPE = {
    "event_id": UUID("00000000-0000-4000-8000-000000000001"),
    "occurred_at": AT,
    "workspace_id": "ws_acme",
    "correlation_id": "batch_0123456789ab",
}
BATCH = "batch_0123456789ab"
CONTACT = f"{BATCH}_r1"
ATTEMPT = f"{CONTACT}_a1"
AGENT = ev.AgentSnapshot(
    agent_id="agent_42",
    name="Renewals",
    prompt_template="Hello {first_name}, calling from {company_name}.",
    variables=("first_name", "company_name"),
    caller_id="+14155550100",
    defaults={"company_name": "Acme"},
    missing_variable="empty",
    max_call_seconds=300,
)
CALL = {"batch_id": BATCH, "contact_id": CONTACT, "attempt_id": ATTEMPT, "attempt_number": 1}
COUNTS = ev.BatchCounts(total=3, completed=1, failed=1, cancelled=0, skipped=1)

EXAMPLES: dict[str, ev.Message] = {
    m.type: m  # type: ignore[attr-defined]
    for m in [
        ev.BatchAccepted(
            **ENVELOPE,
            batch_id=BATCH,
            name="December renewals",
            total_rows=3,
            agent=AGENT,
            scheduled_at=AT,
            calling_window=ev.CallingWindowSpec(
                days=(0, 1, 2, 3, 4), start=time(9), end=time(20), fallback_timezone="America/New_York"
            ),
            retry_policy=ev.RetryPolicySpec(
                max_attempts=3, gaps_seconds=(3600, 86400), retry_voicemail=False
            ),
            webhook_url="https://example.com/hook",
            dry_run=False,
            created_at=AT,
        ),
        ev.BatchIngested(**ENVELOPE, batch_id=BATCH, total_rows=3, accepted=2, skipped=1),
        ev.CancelBatch(**ENVELOPE, batch_id=BATCH, requested_at=AT),
        ev.PauseBatch(**ENVELOPE, batch_id=BATCH),
        ev.ResumeBatch(**ENVELOPE, batch_id=BATCH),
        ev.ContactAccepted(
            **ENVELOPE,
            batch_id=BATCH,
            contact_id=CONTACT,
            row_number=1,
            phone_number="+14155550123",
            variables={"first_name": "Ada", "region": "West"},
        ),
        ev.ContactSkipped(
            **ENVELOPE,
            batch_id=BATCH,
            contact_id=f"{BATCH}_r2",
            row_number=2,
            phone_number="12345",
            reason=SkipReason.INVALID_NUMBER,
            detail="not a valid number",
            variables={"first_name": "Bob"},
        ),
        ev.CallRequested(
            **ENVELOPE,
            **CALL,
            phone_number="+14155550123",
            variables={"first_name": "Ada"},
            agent=AGENT,
            lease_expires_at=AT,
            not_before=AT,
            start_by=AT,
        ),
        ev.CallStarted(**ENVELOPE, **CALL, phone_number="+14155550123", provider="simulated"),
        ev.CallRinging(**ENVELOPE, **CALL),
        ev.CallAnswered(**ENVELOPE, **CALL, answered_by="human"),
        ev.CallEnded(
            **ENVELOPE,
            **CALL,
            outcome=Outcome.BUSY,
            started_at=AT,
            answered_at=None,
            duration_seconds=0.0,
            billable=False,
            provider="sip",
            provider_code="486",
            provider_reason="Busy Here",
        ),
        ev.RetryScheduled(
            **ENVELOPE,
            batch_id=BATCH,
            contact_id=CONTACT,
            next_attempt_number=2,
            due_at=AT,
            after_outcome=Outcome.BUSY,
        ),
        ev.ContactFinished(
            **ENVELOPE, batch_id=BATCH, contact_id=CONTACT, outcome=Outcome.COMPLETED, attempts=2
        ),
        ev.ContactCancelled(**ENVELOPE, batch_id=BATCH, contact_id=CONTACT),
        ev.BatchStarted(**ENVELOPE, batch_id=BATCH),
        ev.BatchPaused(**ENVELOPE, batch_id=BATCH),
        ev.BatchResumed(**ENVELOPE, batch_id=BATCH),
        ev.BatchCancelled(**ENVELOPE, batch_id=BATCH, counts=COUNTS),
        ev.BatchCompleted(**ENVELOPE, batch_id=BATCH, counts=COUNTS),
    ]
}
