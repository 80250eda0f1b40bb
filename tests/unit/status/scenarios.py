"""Realistic event histories of a batch, as ingest, dispatcher and dialer would publish them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.events import (
    AgentSnapshot,
    BatchAccepted,
    BatchCancelled,
    BatchCompleted,
    BatchCounts,
    BatchIngested,
    BatchStarted,
    CallAnswered,
    CallEnded,
    CallRequested,
    CallRinging,
    CallStarted,
    CancelBatch,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    Message,
    RetryScheduled,
)
from shared.outcomes import Outcome, SkipReason
from shared.topics import Topic, topic_for
from status.ports import Position, Record

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
AGENT = AgentSnapshot(
    agent_id="agent_1", name="Ava", prompt_template="Hi {first_name}", variables=("first_name",)
)
RETRYABLE = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.UNREACHABLE, Outcome.SYSTEM_ERROR)
FINAL = (
    Outcome.COMPLETED,
    Outcome.VOICEMAIL,
    Outcome.INVALID_NUMBER,
    Outcome.CARRIER_BLOCKED,
    Outcome.OPTED_OUT,
    Outcome.BUSY,
)


@dataclass
class History:
    """The messages of one batch in publish order."""

    workspace_id: str
    batch_id: str
    rows: int
    messages: list[Message] = field(default_factory=list)

    def records(self) -> list[Record]:
        """Records with Kafka positions: one partition per topic here, offsets in publish order."""
        offsets: dict[str, int] = {}
        out: list[Record] = []
        for message in self.messages:
            topic = topic_for(message) if not isinstance(message, ContactSkipped) else Topic.CONTACTS
            partition = f"{topic.value}:0"
            offset = offsets.get(partition, -1) + 1
            offsets[partition] = offset
            out.append(Record(message, Position(partition, offset)))
        return out


def history(
    seed: int,
    rows: int = 6,
    *,
    workspace_id: str = "ws_1",
    batch_id: str | None = None,
    cancel: bool = False,
    webhook_url: str | None = None,
    t0: datetime = T0,
) -> History:
    """A whole batch: accepted, its rows (some skipped), attempts with retries, and its end."""
    rng = random.Random(seed)
    batch_id = batch_id or f"batch_{seed:08x}"
    h = History(workspace_id, batch_id, rows)
    clock = [t0]

    def tick(seconds: float = 1.0) -> datetime:
        clock[0] = clock[0] + timedelta(seconds=seconds)
        return clock[0]

    def env() -> dict[str, object]:
        return {
            "workspace_id": workspace_id,
            "correlation_id": batch_id,
            "occurred_at": tick(rng.random() * 3),
        }

    h.messages.append(
        BatchAccepted(
            **env(),  # type: ignore[arg-type]
            batch_id=batch_id,
            total_rows=rows,
            agent=AGENT,
            created_at=t0,
            name="Spring outreach",
            webhook_url=webhook_url,
        )
    )
    skipped = 0
    accepted: list[tuple[str, str]] = []
    for row in range(1, rows + 1):
        contact_id = f"{batch_id}_r{row}"
        phone = f"+1555010{row:04d}"
        variables = {"first_name": f"Name{row}", "e.mail": f"n{row}@example.com", "$weird": "=1+2"}
        if rng.random() < 0.15:
            skipped += 1
            h.messages.append(
                ContactSkipped(
                    **env(),  # type: ignore[arg-type]
                    batch_id=batch_id,
                    contact_id=contact_id,
                    row_number=row,
                    phone_number="12ab",
                    reason=rng.choice(list(SkipReason)),
                    variables=variables,
                )
            )
        else:
            accepted.append((contact_id, phone))
            h.messages.append(
                ContactAccepted(
                    **env(),  # type: ignore[arg-type]
                    batch_id=batch_id,
                    contact_id=contact_id,
                    row_number=row,
                    phone_number=phone,
                    variables=variables,
                )
            )
    h.messages.append(
        BatchIngested(
            **env(),  # type: ignore[arg-type]
            batch_id=batch_id,
            total_rows=rows,
            accepted=rows - skipped,
            skipped=skipped,
        )
    )
    h.messages.append(BatchStarted(**env(), batch_id=batch_id))  # type: ignore[arg-type]
    completed = failed = cancelled = 0
    cancel_after = rng.randrange(len(accepted) + 1) if cancel else None
    for index, (contact_id, phone) in enumerate(accepted):
        if cancel_after is not None and index >= cancel_after:
            if index == cancel_after:
                h.messages.append(
                    CancelBatch(**env(), batch_id=batch_id, requested_at=clock[0])  # type: ignore[arg-type]
                )
            h.messages.append(ContactCancelled(**env(), batch_id=batch_id, contact_id=contact_id))  # type: ignore[arg-type]
            cancelled += 1
            continue
        attempts = rng.randint(1, 3)
        outcome = Outcome.COMPLETED
        for number in range(1, attempts + 1):
            last = number == attempts
            outcome = rng.choice(FINAL) if last else rng.choice(RETRYABLE)
            attempt_id = f"{contact_id}_a{number}"
            common = {"batch_id": batch_id, "contact_id": contact_id, "attempt_id": attempt_id}
            h.messages.append(
                CallRequested(
                    **env(),  # type: ignore[arg-type]
                    **common,
                    attempt_number=number,
                    phone_number=phone,
                    variables={},
                    agent=AGENT,
                    lease_expires_at=clock[0] + timedelta(minutes=11),
                )
            )
            started = env()
            h.messages.append(
                CallStarted(
                    **started, **common, attempt_number=number, phone_number=phone, provider="simulated"
                )  # type: ignore[arg-type]
            )
            h.messages.append(CallRinging(**env(), **common, attempt_number=number))  # type: ignore[arg-type]
            answered = outcome in (Outcome.COMPLETED, Outcome.VOICEMAIL, Outcome.OPTED_OUT)
            answered_at = None
            if answered:
                answered_env = env()
                answered_at = answered_env["occurred_at"]
                h.messages.append(
                    CallAnswered(**answered_env, **common, attempt_number=number, answered_by="human")  # type: ignore[arg-type]
                )
            duration = round(rng.uniform(5, 200), 3) if answered else 0.0
            h.messages.append(
                CallEnded(
                    **{**env(), "occurred_at": tick(duration + 1)},  # type: ignore[arg-type]
                    **common,
                    attempt_number=number,
                    outcome=outcome,
                    started_at=started["occurred_at"],  # type: ignore[arg-type]
                    answered_at=answered_at,  # type: ignore[arg-type]
                    duration_seconds=duration,
                    billable=outcome.billable,
                    provider="simulated",
                    provider_code="200" if answered else "486",
                )
            )
            if not last:
                h.messages.append(
                    RetryScheduled(
                        **env(),  # type: ignore[arg-type]
                        batch_id=batch_id,
                        contact_id=contact_id,
                        next_attempt_number=number + 1,
                        due_at=clock[0] + timedelta(minutes=5),
                        after_outcome=outcome,
                    )
                )
        h.messages.append(
            ContactFinished(
                **env(),  # type: ignore[arg-type]
                batch_id=batch_id,
                contact_id=contact_id,
                outcome=outcome,
                attempts=attempts,
            )
        )
        if outcome.successful:
            completed += 1
        else:
            failed += 1
    counts = BatchCounts(
        total=rows, completed=completed, failed=failed + skipped, cancelled=cancelled, skipped=skipped
    )
    if cancel:
        h.messages.append(BatchCancelled(**env(), batch_id=batch_id, counts=counts))  # type: ignore[arg-type]
    else:
        h.messages.append(BatchCompleted(**env(), batch_id=batch_id, counts=counts))  # type: ignore[arg-type]
    return h


def interleave(records: list[Record], rng: random.Random) -> list[Record]:
    """A consumption order Kafka could produce: each partition in order, partitions interleaved at random."""
    queues: dict[str, list[Record]] = {}
    for record in records:
        queues.setdefault(record.position.partition, []).append(record)
    for queue in queues.values():
        queue.reverse()
    out: list[Record] = []
    while queues:
        name = rng.choice(sorted(queues))
        out.append(queues[name].pop())
        if not queues[name]:
            del queues[name]
    return out


def chunks(records: list[Record], rng: random.Random, largest: int = 12) -> list[list[Record]]:
    out: list[list[Record]] = []
    i = 0
    while i < len(records):
        size = rng.randint(1, largest)
        out.append(records[i : i + size])
        i += size
    return out
