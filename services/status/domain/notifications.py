"""What a change of a call or a batch tells the outside world: webhook notices and live-feed entries.

Notices carry deterministic ids (`<job id>.completed`, `<attempt id>.started`, `<batch id>.completed`), so
the same change seen twice — a redelivery, a replay — is the same notice, and receivers deduplicate by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.outcomes import BatchStatus, PublicCallStatus
from status.domain.batches import BatchView
from status.domain.calls import Attempt, CallView

CALL_STARTED = "call.started"
CALL_COMPLETED = "call.completed"
CALL_FAILED = "call.failed"
BATCH_STARTED = "batch.started"
BATCH_COMPLETED = "batch.completed"
BATCH_CANCELLED = "batch.cancelled"

WEBHOOK_EVENTS = (CALL_STARTED, CALL_COMPLETED, CALL_FAILED, BATCH_STARTED, BATCH_COMPLETED, BATCH_CANCELLED)


@dataclass(frozen=True, slots=True)
class Notice:
    """One webhook event, before it is addressed to endpoints."""

    notice_id: str
    event: str
    workspace_id: str
    batch_id: str
    created_at: int
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The body receivers get: `{id, event, createdAt, data}`."""
        return {"id": self.notice_id, "event": self.event, "createdAt": self.created_at, "data": self.data}


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a batch's live feed (the Server-Sent-Events stream)."""

    kind: str
    data: dict[str, Any]


def _call_data(view: CallView, batch: BatchView, attempt: Attempt | None) -> dict[str, Any]:
    return {
        "callId": attempt.attempt_id if attempt else None,
        "jobId": view.contact_id,
        "batchId": view.batch_id,
        "agentId": batch.agent_id,
        "status": view.status.value,
        "duration": view.duration_seconds,
        "phone_number": view.phone_number,
        "attempt": attempt.number if attempt else None,
        "outcome": view.outcome,
        "error": view.error,
    }


def call_notices(
    old: CallView | None, new: CallView, batch: BatchView, started_attempt: int | None, at: int
) -> list[Notice]:
    """Notices for one call change; `started_attempt` is the attempt this change first saw started."""
    notices: list[Notice] = []
    if started_attempt is not None:
        attempt = next(a for a in new.attempts if a.number == started_attempt)
        notices.append(
            Notice(
                f"{attempt.attempt_id}.started",
                CALL_STARTED,
                new.workspace_id,
                new.batch_id,
                attempt.started_at or at,
                _call_data(new, batch, attempt),
            )
        )
    status = new.status
    was = old.status if old is not None else None
    if status != was and status in (PublicCallStatus.COMPLETED, PublicCallStatus.FAILED):
        event = CALL_COMPLETED if status is PublicCallStatus.COMPLETED else CALL_FAILED
        notices.append(
            Notice(
                f"{new.contact_id}.{status.value}",
                event,
                new.workspace_id,
                new.batch_id,
                new.terminal_at or at,
                _call_data(new, batch, new.last_ended_attempt or new.latest_attempt),
            )
        )
    return notices


def newly_started_attempt(old: CallView | None, new: CallView) -> int | None:
    """The attempt number that has a start time in `new` but not in `old`."""
    before = {a.number for a in old.attempts if a.started_at is not None} if old else set()
    for attempt in new.attempts:
        if attempt.started_at is not None and attempt.number not in before:
            return attempt.number
    return None


def counts_data(batch: BatchView) -> dict[str, Any]:
    counts = batch.shown_counts
    return {
        "batchId": batch.batch_id,
        "status": batch.status.value,
        "isComplete": batch.is_complete,
        "total": batch.total,
        "waiting": counts.waiting,
        "active": counts.active,
        "completed": counts.completed,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "skipped": counts.skipped,
    }


def batch_notices(old: BatchStatus | None, new: BatchView, at: int) -> list[Notice]:
    """Notices for a change of the batch's status."""
    status = new.status
    if status == old:
        return []
    notices: list[Notice] = []
    data = {**counts_data(new), "agentId": new.agent_id}
    # A batch projected in one go may jump from queued to completed: it still started if a call was made.
    started = old in (None, BatchStatus.QUEUED) and (
        status in (BatchStatus.PROCESSING, BatchStatus.PAUSED) or new.start_time is not None
    )
    if started:
        notices.append(
            Notice(f"{new.batch_id}.started", BATCH_STARTED, new.workspace_id, new.batch_id, at, data)
        )
    if status in (BatchStatus.COMPLETED, BatchStatus.FAILED):
        notices.append(
            Notice(f"{new.batch_id}.completed", BATCH_COMPLETED, new.workspace_id, new.batch_id, at, data)
        )
    elif status is BatchStatus.CANCELLED:
        notices.append(
            Notice(f"{new.batch_id}.cancelled", BATCH_CANCELLED, new.workspace_id, new.batch_id, at, data)
        )
    return notices


def call_feed_item(old: CallView | None, new: CallView, at: int) -> FeedItem | None:
    """A feed entry when the call's public status changed."""
    status = new.status
    if old is not None and old.status == status:
        return None
    latest = new.latest_attempt
    return FeedItem(
        "call",
        {
            "jobId": new.contact_id,
            "status": status.value,
            "phone_number": new.phone_number,
            "attempt": latest.number if latest else None,
            "outcome": new.outcome,
            "error": new.error,
            "duration": new.duration_seconds,
            "at": at,
        },
    )


def progress_item(batch: BatchView) -> FeedItem:
    """A feed entry with the batch's numbers now."""
    return FeedItem("progress", counts_data(batch))
