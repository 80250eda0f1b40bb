"""The batch document: the batch's own lifecycle events plus the sum of what its calls contribute.

Lifecycle slots follow the same rule as call slots (the earliest report wins; pause and resume compare their
latest times), so they are order-tolerant. Counts and billing are never counted from events: each call
document contributes a `Contribution` (its public status, billable attempts, talk time), and when a call
document changes, the batch takes `new - old`. Summed over every call this telescopes to the contributions of
the final call documents, whatever the order of events — the counts cannot drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TypeGuard

from shared.events import (
    BatchAccepted,
    BatchCancelled,
    BatchCompleted,
    BatchIngested,
    BatchPaused,
    BatchResumed,
    BatchStarted,
    CancelBatch,
    PauseBatch,
    ResumeBatch,
)
from shared.outcomes import BatchStatus, PublicCallStatus
from status.domain.calls import CallView
from status.domain.clock import epoch_ms, utc_day

BatchEvent = (
    BatchAccepted
    | BatchIngested
    | CancelBatch
    | PauseBatch
    | ResumeBatch
    | BatchStarted
    | BatchPaused
    | BatchResumed
    | BatchCancelled
    | BatchCompleted
)
"""Every message about the batch as a whole."""

BATCH_EVENT_TYPES: tuple[type, ...] = (
    BatchAccepted,
    BatchIngested,
    CancelBatch,
    PauseBatch,
    ResumeBatch,
    BatchStarted,
    BatchPaused,
    BatchResumed,
    BatchCancelled,
    BatchCompleted,
)


def is_batch_event(message: object) -> TypeGuard[BatchEvent]:
    """True for the messages about the batch as a whole."""
    return isinstance(message, BATCH_EVENT_TYPES)


RECENT_CALLS = 10
"""How many of the latest finished calls the batch document keeps for `recent_calls`."""

FINISHED_BATCH = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class Counts:
    """Calls per public status; `skipped` is the part of `failed` that was never dialed."""

    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0

    def plus(self, other: Counts, sign: int = 1) -> Counts:
        return Counts(
            self.waiting + sign * other.waiting,
            self.active + sign * other.active,
            self.completed + sign * other.completed,
            self.failed + sign * other.failed,
            self.cancelled + sign * other.cancelled,
            self.skipped + sign * other.skipped,
        )

    @property
    def seen(self) -> int:
        return self.waiting + self.active + self.completed + self.failed + self.cancelled

    @property
    def terminal(self) -> int:
        return self.completed + self.failed + self.cancelled


@dataclass(frozen=True, slots=True)
class Usage:
    """Billable use on one UTC day."""

    day: str
    attempts: int = 0
    seconds_ms: int = 0
    minutes: int = 0


@dataclass(frozen=True, slots=True)
class RecentCall:
    """A finished call as `recent_calls` lists it."""

    job_id: str
    status: PublicCallStatus
    phone_number: str | None
    at: int
    duration_ms: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one call document adds to its batch."""

    counts: Counts = Counts()
    billable_attempts: int = 0
    billable_ms: int = 0
    billable_minutes: int = 0
    talk_ms: int = 0
    talked: int = 0
    usage: tuple[Usage, ...] = ()
    first_started_at: int | None = None
    terminal_at: int | None = None
    recent: RecentCall | None = None
    columns: tuple[int, tuple[str, ...]] | None = None
    """(row number, CSV column names) of the call, so the batch can name the export's columns."""


NOTHING = Contribution()


def contribution(view: CallView | None) -> Contribution:
    """What the call document `view` contributes (nothing when there is no document yet)."""
    if view is None:
        return NOTHING
    status = view.status
    counts = Counts(
        waiting=int(status is PublicCallStatus.WAITING),
        active=int(status is PublicCallStatus.ACTIVE),
        completed=int(status is PublicCallStatus.COMPLETED),
        failed=int(status is PublicCallStatus.FAILED),
        cancelled=int(status is PublicCallStatus.CANCELLED),
        skipped=int(view.is_skipped),
    )
    by_day: dict[str, Usage] = {}
    billable_ms = minutes = attempts = 0
    first_started: int | None = None
    for attempt in view.attempts:
        started = attempt.started_at
        if started is not None and (first_started is None or started < first_started):
            first_started = started
        ending = attempt.ending
        if ending is None or not ending.billable:
            continue
        per_minute = max(1, math.ceil(ending.duration_ms / 60_000))
        attempts += 1
        billable_ms += ending.duration_ms
        minutes += per_minute
        day = utc_day(ending.at)
        old = by_day.get(day, Usage(day))
        by_day[day] = Usage(
            day, old.attempts + 1, old.seconds_ms + ending.duration_ms, old.minutes + per_minute
        )
    talk_ms = talked = 0
    if status is PublicCallStatus.COMPLETED:
        ended = view.last_ended_attempt
        if ended is not None and ended.ending is not None:
            talk_ms, talked = ended.ending.duration_ms, 1
    terminal_at = view.terminal_at
    recent = None
    if terminal_at is not None:
        duration = view.last_ended_attempt
        recent = RecentCall(
            job_id=view.contact_id,
            status=status,
            phone_number=view.phone_number,
            at=terminal_at,
            duration_ms=duration.ending.duration_ms if duration and duration.ending else None,
            error=view.error,
        )
    row = view.row_number
    names = tuple(name for name, _ in view.variables)
    return Contribution(
        counts=counts,
        billable_attempts=attempts,
        billable_ms=billable_ms,
        billable_minutes=minutes,
        talk_ms=talk_ms,
        talked=talked,
        usage=tuple(sorted(by_day.values(), key=lambda u: u.day)),
        first_started_at=first_started,
        terminal_at=terminal_at,
        recent=recent,
        columns=(row, names) if row is not None and names else None,
    )


@dataclass(frozen=True, slots=True)
class Accepted:
    """The batch as ingest accepted it (BatchAccepted)."""

    at: int
    event_id: str
    name: str | None
    total_rows: int
    agent_id: str
    agent_name: str
    scheduled_at: int | None
    webhook_url: str | None
    dry_run: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Ingested:
    """Every row has been published (BatchIngested)."""

    at: int
    event_id: str
    total_rows: int
    accepted: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Closing:
    """How the dispatcher closed the batch (BatchCompleted or BatchCancelled) and its counts then."""

    at: int
    event_id: str
    total: int
    completed: int
    failed: int
    cancelled: int
    skipped: int


@dataclass(frozen=True, slots=True)
class BatchView:
    """One batch as the public API shows it."""

    batch_id: str
    workspace_id: str
    accepted: Accepted | None = None
    ingested: Ingested | None = None
    started_at: int | None = None
    cancel_requested_at: int | None = None
    cancelled: Closing | None = None
    completed: Closing | None = None
    paused_at: int | None = None
    resumed_at: int | None = None
    counts: Counts = Counts()
    billable_attempts: int = 0
    billable_ms: int = 0
    billable_minutes: int = 0
    talk_ms: int = 0
    talked: int = 0
    usage: tuple[Usage, ...] = ()
    first_call_at: int | None = None
    last_completed_at: int | None = None
    recent: tuple[RecentCall, ...] = ()
    columns: tuple[int, tuple[str, ...]] | None = None
    offsets: dict[str, int] = field(default_factory=dict, compare=True)
    """Per Kafka partition, the highest offset whose effects this document holds (crash recovery: an event
    at or below it is not counted again). Bookkeeping, not part of the public view."""
    feed_seq: int = 0
    """The sequence number of the last entry in the batch's live feed."""

    # --- derived ----------------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Every data row of the upload, skipped ones included."""
        if self.accepted is not None:
            return self.accepted.total_rows
        if self.ingested is not None:
            return self.ingested.total_rows
        return self.counts.seen

    @property
    def shown_counts(self) -> Counts:
        """Counts with rows not yet projected shown as waiting (so they add up to `total`), and a cancelled
        batch's leftovers shown as cancelled."""
        counts = self.counts
        unseen = max(0, self.total - counts.seen)
        waiting = counts.waiting + unseen
        if self.cancelled is not None or self.cancel_requested_at is not None:
            # Waiting contacts are dropped at cancel; the dispatcher's per-contact events may lag.
            return replace(counts, waiting=0, cancelled=counts.cancelled + waiting)
        return replace(counts, waiting=waiting)

    @property
    def is_complete(self) -> bool:
        """Every contact is terminal in its call document. A cancelled batch shows its waiting contacts as
        cancelled at once, but is complete only once their cancellations are projected too, so a reader of
        a complete batch never finds a call still waiting."""
        counts = self.counts
        unseen = max(0, self.total - counts.seen)
        started = (self.accepted or self.ingested) is not None
        return counts.active == 0 and counts.waiting + unseen == 0 and started

    @property
    def status(self) -> BatchStatus:
        if self.cancelled is not None or self.cancel_requested_at is not None:
            return BatchStatus.CANCELLED
        # Not on the dispatcher's completion alone: it travels on another topic than the contacts' own
        # ends, and a batch shown (or announced by webhook) as completed must count every one of them.
        if self.is_complete:
            counts = self.shown_counts
            if counts.completed == 0 and counts.failed > 0:
                return BatchStatus.FAILED
            return BatchStatus.COMPLETED
        if self.paused_at is not None and self.paused_at > (self.resumed_at or 0):
            return BatchStatus.PAUSED
        if (
            self.started_at is not None
            or self.first_call_at is not None
            or self.counts.active
            or self.counts.completed
            or (self.counts.failed - self.counts.skipped)
        ):
            return BatchStatus.PROCESSING
        return BatchStatus.QUEUED

    @property
    def start_time(self) -> int | None:
        if self.started_at is not None and self.first_call_at is not None:
            return min(self.started_at, self.first_call_at)
        return self.started_at if self.started_at is not None else self.first_call_at

    @property
    def completed_time(self) -> int | None:
        """When the batch reached its final state."""
        for closing in (self.cancelled, self.completed if self.is_complete else None):
            if closing is not None:
                return closing.at
        if self.cancel_requested_at is not None:
            return self.cancel_requested_at
        return self.last_completed_at if self.is_complete else None

    @property
    def average_call_duration(self) -> float:
        """Mean talk time of completed calls, in seconds."""
        return round(self.talk_ms / self.talked / 1000, 3) if self.talked else 0.0

    @property
    def agent_id(self) -> str | None:
        return self.accepted.agent_id if self.accepted else None

    @property
    def created_at(self) -> int | None:
        return self.accepted.created_at if self.accepted else None


def new_batch(batch_id: str, workspace_id: str) -> BatchView:
    return BatchView(batch_id=batch_id, workspace_id=workspace_id)


def _earliest(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _latest(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)


def _closing(at: int, event_id: str, event: BatchCancelled | BatchCompleted) -> Closing:
    c = event.counts
    return Closing(at, event_id, c.total, c.completed, c.failed, c.cancelled, c.skipped)


def apply_batch_event(view: BatchView, event: BatchEvent) -> BatchView:
    """The batch document after one of its own lifecycle events."""
    at, event_id = epoch_ms(event.occurred_at), str(event.event_id)
    stamp = (at, event_id)
    if isinstance(event, BatchAccepted):
        accepted = Accepted(
            at=at,
            event_id=event_id,
            name=event.name,
            total_rows=event.total_rows,
            agent_id=event.agent.agent_id,
            agent_name=event.agent.name,
            scheduled_at=epoch_ms(event.scheduled_at) if event.scheduled_at else None,
            webhook_url=event.webhook_url,
            dry_run=event.dry_run,
            created_at=epoch_ms(event.created_at),
        )
        if view.accepted is None or stamp < (view.accepted.at, view.accepted.event_id):
            return replace(view, accepted=accepted)
        return view
    if isinstance(event, BatchIngested):
        ingested = Ingested(at, event_id, event.total_rows, event.accepted, event.skipped)
        if view.ingested is None or stamp < (view.ingested.at, view.ingested.event_id):
            return replace(view, ingested=ingested)
        return view
    if isinstance(event, CancelBatch):
        return replace(view, cancel_requested_at=_earliest(view.cancel_requested_at, at))
    if isinstance(event, PauseBatch | BatchPaused):
        return replace(view, paused_at=_latest(view.paused_at, at))
    if isinstance(event, ResumeBatch | BatchResumed):
        return replace(view, resumed_at=_latest(view.resumed_at, at))
    if isinstance(event, BatchStarted):
        return replace(view, started_at=_earliest(view.started_at, at))
    if isinstance(event, BatchCancelled):
        if view.cancelled is None or stamp < (view.cancelled.at, view.cancelled.event_id):
            return replace(view, cancelled=_closing(at, event_id, event))
        return view
    if view.completed is None or stamp < (view.completed.at, view.completed.event_id):
        return replace(view, completed=_closing(at, event_id, event))
    return view


class Tally:
    """The sum of many calls' contribution changes, applied to their batch in one step (a chunk of events
    changes thousands of calls of one batch; adding them one by one would rebuild the batch each time)."""

    __slots__ = (
        "counts",
        "billable_attempts",
        "billable_ms",
        "billable_minutes",
        "talk_ms",
        "talked",
        "usage",
        "first_call_at",
        "last_completed_at",
        "recent",
        "columns",
        "changes",
    )

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0, 0, 0]
        self.billable_attempts = 0
        self.billable_ms = 0
        self.billable_minutes = 0
        self.talk_ms = 0
        self.talked = 0
        self.usage: dict[str, list[int]] = {}
        self.first_call_at: int | None = None
        self.last_completed_at: int | None = None
        self.recent: dict[str, RecentCall | None] = {}
        self.columns: tuple[int, tuple[str, ...]] | None = None
        self.changes = 0

    def add(self, old: Contribution, new: Contribution) -> Tally:
        """Takes one call's change from contributing `old` to contributing `new`."""
        if old == new:
            return self
        self.changes += 1
        for sign, part in ((-1, old), (1, new)):
            c = part.counts
            counts = self.counts
            counts[0] += sign * c.waiting
            counts[1] += sign * c.active
            counts[2] += sign * c.completed
            counts[3] += sign * c.failed
            counts[4] += sign * c.cancelled
            counts[5] += sign * c.skipped
            self.billable_attempts += sign * part.billable_attempts
            self.billable_ms += sign * part.billable_ms
            self.billable_minutes += sign * part.billable_minutes
            self.talk_ms += sign * part.talk_ms
            self.talked += sign * part.talked
            for u in part.usage:
                line = self.usage.setdefault(u.day, [0, 0, 0])
                line[0] += sign * u.attempts
                line[1] += sign * u.seconds_ms
                line[2] += sign * u.minutes
        if new.first_started_at is not None:
            self.first_call_at = _earliest(self.first_call_at, new.first_started_at)
        if new.terminal_at is not None:
            self.last_completed_at = _latest(self.last_completed_at, new.terminal_at)
        if new.recent != old.recent:
            # Both describe the same call; the latest state wins (None: it left the recent list).
            changed = new.recent or old.recent
            assert changed is not None
            self.recent[changed.job_id] = new.recent
        if new.columns is not None and (self.columns is None or new.columns[0] < self.columns[0]):
            self.columns = new.columns
        return self

    def reached_terminal(self, at: int) -> None:
        """A call of the batch was terminal at `at` on its way (a later state may say another time: a call
        cancelled and then found finished); the batch's last completion is the latest such time."""
        self.last_completed_at = _latest(self.last_completed_at, at)


def apply_tally(view: BatchView, tally: Tally) -> BatchView:
    """The batch with a tally of call changes added."""
    if not tally.changes:
        return view
    usage = {u.day: u for u in view.usage}
    for day, (attempts, seconds_ms, minutes) in tally.usage.items():
        have = usage.get(day, Usage(day))
        usage[day] = Usage(
            day, have.attempts + attempts, have.seconds_ms + seconds_ms, have.minutes + minutes
        )
    first_call_at = view.first_call_at
    if tally.first_call_at is not None:
        first_call_at = _earliest(first_call_at, tally.first_call_at)
    last_completed_at = view.last_completed_at
    if tally.last_completed_at is not None:
        last_completed_at = _latest(last_completed_at, tally.last_completed_at)
    recent = view.recent
    if tally.recent:
        kept = [r for r in recent if r.job_id not in tally.recent]
        kept.extend(r for r in tally.recent.values() if r is not None)
        kept.sort(key=lambda r: (-r.at, r.job_id))
        recent = tuple(kept[:RECENT_CALLS])
    columns = view.columns
    if tally.columns is not None and (columns is None or tally.columns[0] < columns[0]):
        columns = tally.columns
    c = tally.counts
    return replace(
        view,
        counts=view.counts.plus(Counts(c[0], c[1], c[2], c[3], c[4], c[5])),
        billable_attempts=view.billable_attempts + tally.billable_attempts,
        billable_ms=view.billable_ms + tally.billable_ms,
        billable_minutes=view.billable_minutes + tally.billable_minutes,
        talk_ms=view.talk_ms + tally.talk_ms,
        talked=view.talked + tally.talked,
        usage=tuple(sorted((u for u in usage.values() if u.attempts), key=lambda u: u.day)),
        first_call_at=first_call_at,
        last_completed_at=last_completed_at,
        recent=recent,
        columns=columns,
    )


def add_contribution(view: BatchView, old: Contribution, new: Contribution) -> BatchView:
    """The batch after one of its calls changed from contributing `old` to contributing `new`."""
    return apply_tally(view, Tally().add(old, new))
