"""The call document: everything known about one contact (one public `jobId`), built from its events.

The document is a join-semilattice: every slot is filled by one kind of event and, when two different events
compete for a slot, the same one wins whatever the arrival order (the earliest by `(occurred_at, event_id)`,
or the highest retry). Applying an event is therefore idempotent, commutative and associative, so duplicates,
replays and reorderings across topics give the same document. The public status is derived from the slots,
never stored as the result of "the last event seen".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeGuard

from shared.events import (
    CallAnswered,
    CallEnded,
    CallRequested,
    CallRinging,
    CallStarted,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    RetryScheduled,
)
from shared.outcomes import ERROR_TEXT, Outcome, PublicCallStatus
from status.domain.clock import epoch_ms

CallEvent = (
    ContactAccepted
    | ContactSkipped
    | CallRequested
    | CallStarted
    | CallRinging
    | CallAnswered
    | CallEnded
    | RetryScheduled
    | ContactFinished
    | ContactCancelled
)
"""Every message that changes a call document."""

CALL_EVENT_TYPES: tuple[type, ...] = (
    ContactAccepted,
    ContactSkipped,
    CallRequested,
    CallStarted,
    CallRinging,
    CallAnswered,
    CallEnded,
    RetryScheduled,
    ContactFinished,
    ContactCancelled,
)

Variables = tuple[tuple[str, str], ...]
"""The CSV row in column order. Pairs, not a mapping: a column name may hold `.` or start with `$`."""


def is_call_event(message: object) -> TypeGuard[CallEvent]:
    """True for the messages that change a call document."""
    return isinstance(message, CALL_EVENT_TYPES)


TERMINAL = frozenset({PublicCallStatus.COMPLETED, PublicCallStatus.FAILED, PublicCallStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class ContactRow:
    """The accepted row (ContactAccepted)."""

    at: int
    event_id: str
    row_number: int
    phone_number: str
    variables: Variables


@dataclass(frozen=True, slots=True)
class Skip:
    """Why the contact is never dialed (ContactSkipped, at upload or at dial time)."""

    at: int
    event_id: str
    reason: str
    detail: str
    row_number: int
    phone_number: str
    variables: Variables


@dataclass(frozen=True, slots=True)
class Ending:
    """How one attempt ended (CallEnded)."""

    at: int
    event_id: str
    outcome: Outcome
    started_at: int
    answered_at: int | None
    duration_ms: int
    billable: bool
    provider: str
    provider_code: str | None
    provider_reason: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One dial of the contact; each phase is the earliest moment any event reported it."""

    number: int
    attempt_id: str
    requested_at: int | None = None
    started_at: int | None = None
    provider: str | None = None
    phone_number: str | None = None
    ringing_at: int | None = None
    answered_at: int | None = None
    answered_by: str | None = None
    ending: Ending | None = None

    @property
    def in_progress(self) -> bool:
        return self.ending is None


@dataclass(frozen=True, slots=True)
class Retry:
    """The latest retry the dispatcher scheduled (RetryScheduled)."""

    at: int
    event_id: str
    next_attempt_number: int
    due_at: int
    after_outcome: Outcome


@dataclass(frozen=True, slots=True)
class Finish:
    """The final outcome the dispatcher decided (ContactFinished)."""

    at: int
    event_id: str
    outcome: Outcome
    attempts: int


@dataclass(frozen=True, slots=True)
class CallView:
    """One contact as the public API shows it."""

    contact_id: str
    workspace_id: str
    batch_id: str
    contact: ContactRow | None = None
    skip: Skip | None = None
    attempts: tuple[Attempt, ...] = ()
    retry: Retry | None = None
    finish: Finish | None = None
    cancelled_at: int | None = None

    # --- derived, never stored on their own ------------------------------------------------------------

    @property
    def status(self) -> PublicCallStatus:
        """waiting (queued, scheduled, retry pending), active (requested, dialing, ringing, in call, or
        ended awaiting the dispatcher's decision), completed, failed or cancelled."""
        if self.finish is not None:
            return PublicCallStatus.COMPLETED if self.finish.outcome.successful else PublicCallStatus.FAILED
        if self.skip is not None:
            return PublicCallStatus.FAILED
        if self.cancelled_at is not None:
            return PublicCallStatus.CANCELLED
        latest = self.latest_attempt
        if latest is None:
            return PublicCallStatus.WAITING
        if self.retry is not None and self.retry.next_attempt_number > latest.number:
            return PublicCallStatus.WAITING
        return PublicCallStatus.ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_skipped(self) -> bool:
        """Never dialed: a skip that no final outcome overrides."""
        return self.finish is None and self.skip is not None

    @property
    def latest_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def last_ended_attempt(self) -> Attempt | None:
        for attempt in reversed(self.attempts):
            if attempt.ending is not None:
                return attempt
        return None

    @property
    def row_number(self) -> int | None:
        if self.contact is not None:
            return self.contact.row_number
        if self.skip is not None:
            return self.skip.row_number
        return row_number_of(self.contact_id)

    @property
    def phone_number(self) -> str | None:
        if self.contact is not None:
            return self.contact.phone_number
        if self.skip is not None:
            return self.skip.phone_number
        for attempt in self.attempts:
            if attempt.phone_number:
                return attempt.phone_number
        return None

    @property
    def variables(self) -> Variables:
        if self.contact is not None:
            return self.contact.variables
        if self.skip is not None:
            return self.skip.variables
        return ()

    @property
    def outcome(self) -> str | None:
        """The final outcome, the skip reason, or the latest attempt's outcome while retries remain."""
        if self.finish is not None:
            return self.finish.outcome.value
        if self.skip is not None:
            return self.skip.reason
        ended = self.last_ended_attempt
        return ended.ending.outcome.value if ended and ended.ending else None

    @property
    def error(self) -> str | None:
        """Human error text for a failed call ("Number busy"); None otherwise."""
        if self.status is not PublicCallStatus.FAILED:
            return None
        if self.finish is not None:
            return ERROR_TEXT.get(self.finish.outcome, self.finish.outcome.value)
        assert self.skip is not None
        return ERROR_TEXT.get(self.skip.reason, self.skip.reason)

    @property
    def start_time(self) -> int | None:
        """When the latest attempt started dialing."""
        latest = self.latest_attempt
        if latest is None:
            return None
        if latest.started_at is not None:
            return latest.started_at
        return latest.ending.started_at if latest.ending else None

    @property
    def end_time(self) -> int | None:
        """When the latest attempt ended (or when the contact was skipped or cancelled without a call)."""
        latest = self.latest_attempt
        if latest is not None and latest.ending is not None:
            return latest.ending.at
        if self.status is PublicCallStatus.FAILED and self.skip is not None:
            return self.skip.at
        if self.status is PublicCallStatus.CANCELLED:
            return self.cancelled_at
        return None

    @property
    def duration_seconds(self) -> float | None:
        """Talk time of the latest ended attempt, in seconds."""
        ended = self.last_ended_attempt
        return ended.ending.duration_ms / 1000 if ended and ended.ending else None

    @property
    def terminal_at(self) -> int | None:
        """When the contact reached its terminal state."""
        status = self.status
        if status not in TERMINAL:
            return None
        if self.finish is not None:
            return self.finish.at
        if self.skip is not None:
            return self.skip.at
        return self.cancelled_at

    @property
    def billable_attempts(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if a.ending is not None and a.ending.billable)

    def listing(self) -> CallListing:
        """The call as a row of a call list."""
        return CallListing(
            contact_id=self.contact_id,
            status=self.status.value,
            phone_number=self.phone_number,
            start_time=self.start_time,
            end_time=self.end_time,
            duration_seconds=self.duration_seconds,
            error=self.error,
            variables=self.variables,
            row_number=self.row_number,
            attempts=len(self.attempts),
            outcome=self.outcome,
        )


@dataclass(frozen=True, slots=True)
class CallListing:
    """What a call list shows of one call: derived from its document, and kept with a sealed list page so a
    deep page needs no document rebuilt (ADR 0056)."""

    contact_id: str
    status: str
    phone_number: str | None
    start_time: int | None
    end_time: int | None
    duration_seconds: float | None
    error: str | None
    variables: Variables
    row_number: int | None
    attempts: int
    outcome: str | None


def row_number_of(contact_id: str) -> int | None:
    """The row number encoded in a deterministic contact id (`<batch>_r<row>`)."""
    _, sep, row = contact_id.rpartition("_r")
    return int(row) if sep and row.isdigit() else None


def _stamp(event: CallEvent) -> tuple[int, str]:
    return epoch_ms(event.occurred_at), str(event.event_id)


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _least(a: str | None, b: str) -> str:
    return b if a is None else min(a, b)


def new_call(event: CallEvent) -> CallView:
    """An empty document for the contact an event is about."""
    return CallView(contact_id=event.contact_id, workspace_id=event.workspace_id, batch_id=event.batch_id)


def apply_call_event(view: CallView | None, event: CallEvent) -> CallView:
    """The document after `event`; returns `view` itself when the event adds nothing (a duplicate)."""
    current = view if view is not None else new_call(event)
    at, event_id = _stamp(event)
    if isinstance(event, ContactAccepted):
        row = ContactRow(at, event_id, event.row_number, event.phone_number, tuple(event.variables.items()))
        if current.contact is None or (at, event_id) < (current.contact.at, current.contact.event_id):
            return replace(current, contact=row)
        return current
    if isinstance(event, ContactSkipped):
        skip = Skip(
            at,
            event_id,
            event.reason.value,
            event.detail,
            event.row_number,
            event.phone_number,
            tuple(event.variables.items()),
        )
        if current.skip is None or (at, event_id) < (current.skip.at, current.skip.event_id):
            return replace(current, skip=skip)
        return current
    if isinstance(event, RetryScheduled):
        retry = Retry(at, event_id, event.next_attempt_number, epoch_ms(event.due_at), event.after_outcome)
        old = current.retry
        if old is None or (retry.next_attempt_number, at, event_id) > (
            old.next_attempt_number,
            old.at,
            old.event_id,
        ):
            return replace(current, retry=retry)
        return current
    if isinstance(event, ContactFinished):
        finish = Finish(at, event_id, event.outcome, event.attempts)
        if current.finish is None or (at, event_id) < (current.finish.at, current.finish.event_id):
            return replace(current, finish=finish)
        return current
    if isinstance(event, ContactCancelled):
        cancelled_at = _earliest(current.cancelled_at, at)
        return (
            current if cancelled_at == current.cancelled_at else replace(current, cancelled_at=cancelled_at)
        )
    return _apply_attempt_event(current, event, at, event_id)


def _apply_attempt_event(
    current: CallView,
    event: CallRequested | CallStarted | CallRinging | CallAnswered | CallEnded,
    at: int,
    event_id: str,
) -> CallView:
    attempts = list(current.attempts)
    index = next((i for i, a in enumerate(attempts) if a.number == event.attempt_number), None)
    before = (
        attempts[index]
        if index is not None
        else Attempt(number=event.attempt_number, attempt_id=event.attempt_id)
    )
    after = merge_attempt(before, event, at, event_id)
    if index is not None and after == before:
        return current
    if index is None:
        attempts.append(after)
        attempts.sort(key=lambda a: a.number)
    else:
        attempts[index] = after
    return replace(current, attempts=tuple(attempts))


def merge_attempt(
    attempt: Attempt,
    event: CallRequested | CallStarted | CallRinging | CallAnswered | CallEnded,
    at: int,
    event_id: str,
) -> Attempt:
    """The attempt after one of its events: each phase keeps its earliest report."""
    if isinstance(event, CallRequested):
        return replace(
            attempt,
            requested_at=_earliest(attempt.requested_at, at),
            phone_number=_least(attempt.phone_number, event.phone_number),
        )
    if isinstance(event, CallStarted):
        phone = _least(attempt.phone_number, event.phone_number)
        if attempt.started_at is None or (at, event.provider) < (attempt.started_at, attempt.provider or ""):
            return replace(attempt, started_at=at, provider=event.provider, phone_number=phone)
        return replace(attempt, phone_number=phone)
    if isinstance(event, CallRinging):
        return replace(attempt, ringing_at=_earliest(attempt.ringing_at, at))
    if isinstance(event, CallAnswered):
        if attempt.answered_at is not None and (attempt.answered_at, attempt.answered_by or "") <= (
            at,
            event.answered_by,
        ):
            return attempt
        return replace(attempt, answered_at=at, answered_by=event.answered_by)
    ending = Ending(
        at=at,
        event_id=event_id,
        outcome=event.outcome,
        started_at=epoch_ms(event.started_at),
        answered_at=epoch_ms(event.answered_at) if event.answered_at else None,
        duration_ms=round(event.duration_seconds * 1000),
        billable=event.billable,
        provider=event.provider,
        provider_code=event.provider_code,
        provider_reason=event.provider_reason,
    )
    old = attempt.ending
    if old is not None and (old.at, old.event_id) <= (at, event_id):
        return attempt
    return replace(attempt, ending=ending)
