"""Response bodies of the status API, shaped exactly as the reference API (plus our additive fields).

Field names follow the reference, including its mixed casing (`phone_number`, `recent_calls`). Timestamps
are epoch milliseconds, durations seconds. `from_*` functions turn read-model views into these bodies.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.outcomes import ERROR_TEXT, PublicCallStatus
from status.domain.batches import BatchView
from status.domain.calls import CallListing, CallView

BatchStatusName = Literal["queued", "processing", "paused", "completed", "cancelled", "failed"]
CallStatusName = Literal["waiting", "active", "completed", "failed", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error: `{"error": <code>, "message": <text>}`."""

    error: str
    message: str


class RecentCall(_Body):
    jobId: str
    status: CallStatusName
    phone_number: str | None = None
    completedAt: int | None = None


class RecentCallDetail(RecentCall):
    """In `/status`: `duration` for a completed call, `failedAt` and `error` for a failed one."""

    duration: float | None = None
    failedAt: int | None = None
    error: str | None = None


class Progress(_Body):
    waiting: int
    active: int
    completed: int
    failed: int
    total: int
    startTime: int | None = None
    lastCompletedTime: int | None = None
    completedTime: int | None = None
    averageCallDuration: float = 0.0
    recent_calls: list[RecentCall] = Field(default_factory=list)
    cancelled: int = Field(0, description="Ours: calls dropped by a cancel (not in the reference's counts).")
    skipped: int = Field(
        0, description="Ours: rows never dialed (counted in `failed`, as the reference does)."
    )


class BatchStatusBody(_Body):
    """`GET /v1/batch-calls/{batchId}`."""

    id: str
    status: BatchStatusName
    isComplete: bool
    totalCalls: int
    progress: Progress
    timestamp: int
    batchId: str | None = None
    name: str | None = None
    agentId: str | None = None
    createdAt: int | None = None
    scheduledAt: int | None = None
    billableAttempts: int = 0
    billableMinutes: int = 0
    billableSeconds: float = 0.0


class FlatStatusBody(_Body):
    """`GET /v1/batch-calls/{batchId}/status`: the same numbers at top level, for polling dashboards."""

    id: str
    status: BatchStatusName
    isComplete: bool
    totalCalls: int
    waiting: int
    active: int
    completed: int
    failed: int
    total: int
    startTime: int | None = None
    lastCompletedTime: int | None = None
    completedTime: int | None = None
    averageCallDuration: float = 0.0
    recent_calls: list[RecentCallDetail] = Field(default_factory=list)
    timestamp: int
    batchId: str | None = None
    cancelled: int = 0
    skipped: int = 0


class CallItem(_Body):
    jobId: str
    status: CallStatusName
    phone_number: str | None = None
    startTime: int | None = None
    endTime: int | None = None
    duration: float | None = None
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    rowNumber: int | None = None
    attempts: int = 0
    outcome: str | None = None


class Pagination(_Body):
    page: int
    limit: int
    total: int
    totalPages: int
    hasNext: bool
    hasPrev: bool


class Summary(_Body):
    total: int
    waiting: int
    active: int
    completed: int
    failed: int
    cancelled: int = 0


class CallsBody(_Body):
    """`GET /v1/batch-calls/{batchId}/calls`."""

    calls: list[CallItem]
    pagination: Pagination
    summary: Summary


class AttemptItem(_Body):
    attempt: int
    attemptId: str
    requestedAt: int | None = None
    startTime: int | None = None
    ringingAt: int | None = None
    answeredAt: int | None = None
    answeredBy: str | None = None
    endTime: int | None = None
    outcome: str | None = None
    duration: float | None = None
    billable: bool = False
    provider: str | None = None
    providerCode: str | None = None
    providerReason: str | None = None
    error: str | None = None


class CallDetailBody(CallItem):
    """`GET /v1/batch-calls/{batchId}/calls/{jobId}`: one call with its attempt history."""

    batchId: str
    history: list[AttemptItem] = Field(default_factory=list)
    skipReason: str | None = None
    nextAttemptAt: int | None = None


class BatchSummaryItem(_Body):
    id: str
    batchId: str
    name: str | None = None
    status: BatchStatusName
    isComplete: bool
    totalCalls: int
    agentId: str | None = None
    createdAt: int | None = None
    progress: Summary


class BatchListBody(_Body):
    """`GET /v1/batch-calls`: newest first."""

    batches: list[BatchSummaryItem]
    pagination: Pagination


class UsageLine(_Body):
    billableAttempts: int
    billableMinutes: int
    billableSeconds: float


class UsageBatch(UsageLine):
    batchId: str
    name: str | None = None


class UsagePeriod(UsageLine):
    period: str


class UsageBody(_Body):
    """`GET /v1/usage`: billable attempts and minutes per batch and per period."""

    workspaceId: str
    period: Literal["day", "month"]
    fromDate: str | None = Field(None, alias="from")
    toDate: str | None = Field(None, alias="to")
    totals: UsageLine
    batches: list[UsageBatch]
    periods: list[UsagePeriod]

    model_config = ConfigDict(populate_by_name=True, extra="allow")


# --- presenting views ----------------------------------------------------------------------------------


def pagination(page: int, limit: int, total: int) -> Pagination:
    pages = max(1, math.ceil(total / limit)) if total else 0
    return Pagination(
        page=page, limit=limit, total=total, totalPages=pages, hasNext=page < pages, hasPrev=page > 1
    )


def summary(batch: BatchView) -> Summary:
    c = batch.shown_counts
    return Summary(
        total=batch.total,
        waiting=c.waiting,
        active=c.active,
        completed=c.completed,
        failed=c.failed,
        cancelled=c.cancelled,
    )


def progress(batch: BatchView) -> Progress:
    c = batch.shown_counts
    return Progress(
        waiting=c.waiting,
        active=c.active,
        completed=c.completed,
        failed=c.failed,
        total=batch.total,
        startTime=batch.start_time,
        lastCompletedTime=batch.last_completed_at,
        completedTime=batch.completed_time,
        averageCallDuration=batch.average_call_duration,
        recent_calls=[
            RecentCall(jobId=r.job_id, status=r.status.value, phone_number=r.phone_number, completedAt=r.at)
            for r in batch.recent
        ],
        cancelled=c.cancelled,
        skipped=c.skipped,
    )


def batch_status(batch: BatchView, now_ms: int) -> BatchStatusBody:
    a = batch.accepted
    return BatchStatusBody(
        id=batch.batch_id,
        batchId=batch.batch_id,
        status=batch.status.value,
        isComplete=batch.is_complete,
        totalCalls=batch.total,
        progress=progress(batch),
        timestamp=now_ms,
        name=a.name if a else None,
        agentId=batch.agent_id,
        createdAt=batch.created_at,
        scheduledAt=a.scheduled_at if a else None,
        billableAttempts=batch.billable_attempts,
        billableMinutes=batch.billable_minutes,
        billableSeconds=batch.billable_ms / 1000,
    )


def flat_status(batch: BatchView, now_ms: int) -> FlatStatusBody:
    p = progress(batch)
    recent = [
        RecentCallDetail(
            jobId=r.job_id,
            status=r.status.value,
            phone_number=r.phone_number,
            completedAt=r.at,
            duration=r.duration_ms / 1000
            if r.status is PublicCallStatus.COMPLETED and r.duration_ms is not None
            else None,
            failedAt=r.at if r.status is PublicCallStatus.FAILED else None,
            error=r.error,
        )
        for r in batch.recent
    ]
    return FlatStatusBody(
        id=batch.batch_id,
        batchId=batch.batch_id,
        status=batch.status.value,
        isComplete=batch.is_complete,
        totalCalls=batch.total,
        waiting=p.waiting,
        active=p.active,
        completed=p.completed,
        failed=p.failed,
        total=p.total,
        startTime=p.startTime,
        lastCompletedTime=p.lastCompletedTime,
        completedTime=p.completedTime,
        averageCallDuration=p.averageCallDuration,
        recent_calls=recent,
        timestamp=now_ms,
        cancelled=p.cancelled,
        skipped=p.skipped,
    )


def call_item(call: CallListing) -> CallItem:
    return CallItem(
        jobId=call.contact_id,
        status=call.status,
        phone_number=call.phone_number,
        startTime=call.start_time,
        endTime=call.end_time,
        duration=call.duration_seconds,
        error=call.error,
        metadata=dict(call.variables),
        rowNumber=call.row_number,
        attempts=call.attempts,
        outcome=call.outcome,
    )


def call_detail(view: CallView) -> CallDetailBody:
    item = call_item(view.listing())
    history: list[AttemptItem] = []
    for a in view.attempts:
        e = a.ending
        history.append(
            AttemptItem(
                attempt=a.number,
                attemptId=a.attempt_id,
                requestedAt=a.requested_at,
                startTime=a.started_at if a.started_at is not None else (e.started_at if e else None),
                ringingAt=a.ringing_at,
                answeredAt=a.answered_at if a.answered_at is not None else (e.answered_at if e else None),
                answeredBy=a.answered_by,
                endTime=e.at if e else None,
                outcome=e.outcome.value if e else None,
                duration=e.duration_ms / 1000 if e else None,
                billable=bool(e and e.billable),
                provider=(e.provider if e else None) or a.provider,
                providerCode=e.provider_code if e else None,
                providerReason=e.provider_reason if e else None,
                error=ERROR_TEXT.get(e.outcome) if e else None,
            )
        )
    retry = view.retry
    latest = view.latest_attempt
    waiting_retry = retry is not None and (latest is None or retry.next_attempt_number > latest.number)
    return CallDetailBody(
        **item.model_dump(),
        batchId=view.batch_id,
        history=history,
        skipReason=view.skip.reason if view.skip else None,
        nextAttemptAt=retry.due_at if retry and waiting_retry and view.finish is None else None,
    )


def batch_summary(batch: BatchView) -> BatchSummaryItem:
    return BatchSummaryItem(
        id=batch.batch_id,
        batchId=batch.batch_id,
        name=batch.accepted.name if batch.accepted else None,
        status=batch.status.value,
        isComplete=batch.is_complete,
        totalCalls=batch.total,
        agentId=batch.agent_id,
        createdAt=batch.created_at,
        progress=summary(batch),
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error bodies a route can answer with."""
    text = {
        400: "Invalid request",
        401: "Missing or invalid API key",
        403: "The key does not belong to this workspace",
        404: "Not found in this workspace",
        429: "Over the plan's requests per minute (see Retry-After)",
        500: "Unexpected server error",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}
