"""The call events one attempt produces, built from its request and what the provider reported."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialer.domain.call import AnsweredBy, CallResult
from shared.events import CallAnswered, CallEnded, CallRequested, CallRinging, CallStarted


def _envelope(request: CallRequested, at: datetime) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "workspace_id": request.workspace_id,
        "correlation_id": request.correlation_id,
        "batch_id": request.batch_id,
        "contact_id": request.contact_id,
        "attempt_id": request.attempt_id,
        "attempt_number": request.attempt_number,
    }


def call_started(request: CallRequested, provider: str, at: datetime) -> CallStarted:
    return CallStarted(**_envelope(request, at), phone_number=request.phone_number, provider=provider)


def call_ringing(request: CallRequested, at: datetime) -> CallRinging:
    return CallRinging(**_envelope(request, at))


def call_answered(request: CallRequested, at: datetime, answered_by: AnsweredBy) -> CallAnswered:
    return CallAnswered(**_envelope(request, at), answered_by=answered_by)


def call_ended(
    request: CallRequested, result: CallResult, *, provider: str, started_at: datetime, now: datetime
) -> CallEnded:
    """The final event: billable only for a billable outcome of a call that really connected."""
    ended_at = result.ended_at or now
    return CallEnded(
        **_envelope(request, ended_at),
        outcome=result.outcome,
        started_at=started_at,
        answered_at=result.answered_at,
        duration_seconds=max(0.0, result.talk_seconds) if result.connected else 0.0,
        billable=result.billable,
        provider=provider,
        provider_code=result.provider_code,
        provider_reason=result.provider_reason,
    )
