"""The dispatcher's use cases: apply inbound events to the owned workspaces' state, and run each owned
workspace's dispatch loop within its limits.

Single writer: a workspace's state is touched only by the replica that owns its partition, and inside this
process only under the workspace's lock (the consumer's apply step and the workspace's dispatch round take
turns). Every effect is ordered so that a crash at any point is repaired by replaying from the last committed
offset: inserts dedupe by deterministic `_id`, and every event id is deterministic (status dedupes by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID, uuid4

from dispatcher.domain.batch import SEGMENT_SIZE, Batch, BatchState, Lane, QueuedContact
from dispatcher.domain.ids import attempt_id, event_id
from dispatcher.domain.lease import LEASE_GRACE, Lease
from dispatcher.domain.lease_book import LeaseBooks
from dispatcher.domain.recipient_zone import lane_key
from dispatcher.domain.retry_policy import Finish, Retry
from dispatcher.domain.start_rate import (
    IN_FLIGHT_SECONDS,
    DialerPace,
    Slot,
    StartSlots,
    expected_lag,
    handover_quiet_seconds,
    in_flight_limit,
    window_of,
)
from dispatcher.metrics import (
    ACTIVE_CALLS,
    CALL_REQUESTS,
    CONCURRENCY_LIMIT,
    CONTACTS_QUEUED,
    DISPATCH_DELAY,
    DUE_CONTACTS,
    LEASES_EXPIRED,
    OUTCOMES,
    ROUND_SECONDS,
    WAITING_CONTACTS,
    forget_workspace,
)
from dispatcher.ports import Clock, DispatchStore, Doc, DoNotCall, EventSink, PlanLimits
from shared.events import (
    SLOT_MISSED,
    BatchAccepted,
    BatchCancelled,
    BatchCompleted,
    BatchCounts,
    BatchIngested,
    BatchPaused,
    BatchResumed,
    BatchStarted,
    CallEnded,
    CallRequested,
    CallStarted,
    CancelBatch,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    Message,
    PauseBatch,
    ResumeBatch,
    RetryScheduled,
    decode,
)
from shared.outcomes import Outcome, SkipReason
from shared.telemetry import consumer_span, inject_headers
from shared.topics import Topic

log = logging.getLogger(__name__)

MAX_ROUND = 2000
"""Most call requests one round emits: bounds memory and the time a round holds the workspace lock. A round
awaits its store writes and the broker's acknowledgements one after another, so on a high plan the rate is
about this many per round time: `bench.dispatch`'s throughput scenario gave 550/s at 500, 950/s at 2,000 and
1,050/s at 5,000 in one sitting (the dispatcher's CPU is then the bound). Plans below a few thousand calls a
second never fill a round: a round plans only the slots of its lead."""
SAVE_EVERY_SECONDS = 1.0
"""A stale cursor after a crash only costs re-checks (attempt ids dedupe), so cursors are saved lazily."""
COMPLETION_CHECK_SECONDS = 1.0
IDLE_SECONDS = 1.0


def minute_of(at: datetime) -> int:
    return int(at.timestamp() // 60)


Traces = Mapping[UUID, str]
"""The W3C `traceparent` each inbound message arrived with, by event id (untraced messages are absent)."""


def _continued(name: str, traceparent: str, **attributes: str | int) -> AbstractContextManager[Any]:
    """A span that continues `traceparent` while one message's work is done; untraced work gets none, so
    the dispatcher never starts a fresh trace per event."""
    if not traceparent:
        return contextlib.nullcontext()
    return consumer_span(name, {"traceparent": traceparent}, **attributes)


def _current_traceparent() -> str:
    # Only `traceparent` is kept with a waiting contact (one short string); a vendor's `tracestate` is not.
    return inject_headers().get("traceparent", "")


@dataclass
class Workspace:
    """The in-memory view of one owned workspace; rebuilt from the store on take-over."""

    workspace_id: str
    partition: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    batches: dict[str, Batch] = field(default_factory=dict)
    retired: dict[str, BatchState] = field(default_factory=dict)
    leases: dict[str, Lease] = field(default_factory=dict)
    books: LeaseBooks = field(default_factory=LeaseBooks)
    """Which stored book holds each open lease (ADR 0025)."""
    slots: StartSlots = field(default_factory=StartSlots)
    pace: DialerPace = field(default_factory=DialerPace)
    unstarted: set[str] = field(default_factory=set)
    """Attempts this instance requested whose start (or end) has not come back yet (in_flight_limit).
    Leases taken over count as started: their events may have been consumed by the predecessor."""
    publish_lag: float = 0.0
    """Expected seconds from a round's start to its requests' acknowledgement: slots begin after it."""
    quiet_until: float = 0.0
    """A new owner plans nothing for one window span (calls its predecessor started and ended may share
    a window with new ones); its predecessor's open slots come back with their leases."""
    needs_quiet: bool = True
    slots_known: bool = True
    """Every lease taken over carried its slot (leases written before slots were stored do not)."""
    owned_since: float = 0.0
    gauges_at: float = 0.0
    """When the workspace's queue gauges were last exported (at most once a second)."""
    turn: int = 0
    task: asyncio.Task[None] | None = None

    def leases_of(self, batch_id: str) -> int:
        return sum(1 for lease in self.leases.values() if lease.contact.batch_id == batch_id)


@dataclass
class Effects:
    """What one step decided to write and publish, applied in a crash-safe order by `Dispatcher._commit`."""

    outcomes: dict[str, list[Doc]] = field(default_factory=dict)
    timers: dict[tuple[str, int], list[tuple[QueuedContact, datetime]]] = field(default_factory=dict)
    events: list[Message] = field(default_factory=list)
    dispatch_events: list[Message] = field(default_factory=list)
    """Published with topic=dispatch-events (a ContactSkipped found at dial time)."""
    ended_leases: list[str] = field(default_factory=list)
    opted_out: list[tuple[str, str]] = field(default_factory=list)
    carriers: dict[UUID, dict[str, str]] = field(default_factory=dict)
    """Trace context of events that continue a trace other than the current one, by event id."""

    def carry(self, event: Message, traceparent: str) -> None:
        if traceparent:
            self.carriers[event.event_id] = {"traceparent": traceparent}

    def terminal(
        self,
        contact: QueuedContact,
        final: str,
        outcome: str,
        attempts: int,
        event: Message,
        *,
        trace: str = "",
    ) -> None:
        """The contact's one terminal state, with the event that announces it. The event is stored with the
        state, so a replay re-sends the event of the state that won, never a second, different one."""
        self.carry(event, trace)
        self.outcomes.setdefault(contact.batch_id, []).append(
            {
                "_id": contact.contact_id,
                "final": final,
                "outcome": outcome,
                "attempts": attempts,
                "event": event.model_dump_json(),
            }
        )


class Dispatcher:
    """Owns the workspaces of the assigned partitions."""

    def __init__(
        self,
        store: DispatchStore,
        sink: EventSink,
        plans: PlanLimits,
        dnc: DoNotCall,
        clock: Clock,
        *,
        on_fatal: Callable[[BaseException], None] | None = None,
        max_round: int = MAX_ROUND,
        lease_grace: timedelta = LEASE_GRACE,
        in_flight_seconds: float = IN_FLIGHT_SECONDS,
        autostart: bool = True,
    ) -> None:
        self._store = store
        self._sink = sink
        self._plans = plans
        self._dnc = dnc
        self._clock = clock
        self._on_fatal = on_fatal
        self._max_round = max_round
        self._autostart = autostart
        self._lease_grace = lease_grace
        self._in_flight_seconds = in_flight_seconds
        self._workspaces: dict[str, Workspace] = {}
        self._partitions: set[int] = set()
        self._taken_at: dict[int, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.poisoned = False
        """Set after an unexpected error: memory may be ahead of the store, so nothing more is saved."""

    # --- ownership -----------------------------------------------------------------------------------------

    @property
    def partitions(self) -> set[int]:
        return set(self._partitions)

    def workspace_ids(self) -> list[str]:
        return list(self._workspaces)

    async def take_over(self, partitions: set[int]) -> None:
        """Load the state of newly assigned partitions and start their workspaces' loops."""
        new = partitions - self._partitions
        if not new:
            return
        segments = await self._store.segments()
        minutes = await self._store.timer_minutes()
        for partition in new:
            self._taken_at[partition] = self._clock.now().timestamp()
        for partition in sorted(new):
            for doc in await self._store.live_batches(partition):
                batch = Batch.from_document(doc)
                workspace = self._workspace(batch.workspace_id, partition)
                batch.timer_minutes = set(minutes.get(batch.batch_id, set()))
                for lane in batch.lanes.values():
                    await self._restore_lane(batch, lane, segments.get((batch.batch_id, lane.index), []))
                workspace.batches[batch.batch_id] = batch
            await self._restore_leases(partition)
            self._partitions.add(partition)
        log.info("took over partitions", extra={"partitions": sorted(new)})

    async def _restore_leases(self, partition: int) -> None:
        """The open leases: every booked lease no ends record frees. Books and ends records that free
        nothing any more (a crash between a step's writes) are deleted; leases stored one document each by
        an earlier version are moved into a book of their own."""
        ends = await self._store.lease_ends(partition)
        ended = {attempt_id for attempt_ids, _ in ends.values() for attempt_id in attempt_ids}
        books = {
            book_id: [Lease.from_document(d) for d in docs]
            for book_id, docs in (await self._store.lease_books(partition)).items()
        }
        unbooked = [Lease.from_document(d) for d in await self._store.unbooked_leases(partition)]
        if unbooked:
            book_id = uuid4().hex
            await self._store.insert_lease_book(
                book_id, partition, [lease.to_document() for lease in unbooked]
            )
            await self._store.drop_unbooked_leases(partition)
            books[book_id] = unbooked
        spent: list[str] = []
        for book_id, booked in books.items():
            leases = [lease for lease in booked if lease.attempt_id not in ended]
            if not leases:
                spent.append(book_id)
                continue
            for lease in leases:
                workspace = self._workspace(lease.workspace_id, partition)
                if workspace.books.holds(lease.attempt_id):
                    continue  # booked twice (moved from the unbooked leases just before a crash)
                workspace.books.opened(book_id, [lease.attempt_id])
                workspace.leases[lease.attempt_id] = lease
                if lease.slot is None:
                    workspace.slots_known = False
                else:
                    workspace.slots.restore([Slot(*lease.slot)])
        await self._store.delete_lease_books(spent)
        owned = [w for w in self._workspaces.values() if w.partition == partition]
        stale_ends: list[str] = []
        for ends_id, (_, book_ids) in ends.items():
            # A record is kept by every workspace with an open lease in one of its books.
            kept = [w.books.restore_ends(ends_id, book_ids) for w in owned]
            if not any(kept):
                stale_ends.append(ends_id)
        await self._store.delete_lease_ends(stale_ends)

    async def _restore_lane(self, batch: Batch, lane: Lane, stored: list[int]) -> None:
        # The saved cursor and tail may be stale; the segments that exist are the truth.
        existing = sorted(s for s in stored if s >= lane.cursor_segment)
        if not existing:
            start = max(lane.cursor_segment, lane.tail_segment) + 1
            lane.cursor_segment, lane.cursor_pos, lane.tail_segment, lane.tail_len = start, 0, start, 0
            return
        if existing[0] > lane.cursor_segment:
            lane.cursor_segment, lane.cursor_pos = existing[0], 0
        lane.tail_segment = existing[-1]
        tail = await self._store.read_segment(batch.batch_id, lane.index, lane.tail_segment)
        lane.tail_len = len(tail)
        if lane.cursor_segment == lane.tail_segment:
            lane.load(tail)

    async def release(self, partitions: set[int]) -> None:
        """Stop the loops of revoked partitions after their current round, saving their cursors."""
        for workspace in [w for w in self._workspaces.values() if w.partition in partitions]:
            async with workspace.lock:
                if workspace.task is not None:
                    workspace.task.cancel()
                await self._save(workspace, force=True)
            if workspace.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await workspace.task
            del self._workspaces[workspace.workspace_id]
            forget_workspace(workspace.workspace_id)
        self._partitions -= partitions
        for partition in partitions:
            self._taken_at.pop(partition, None)

    async def stop(self) -> None:
        self._stopping = True
        await self.release(set(self._partitions) | {w.partition for w in self._workspaces.values()})

    def _workspace(self, workspace_id: str, partition: int) -> Workspace:
        workspace = self._workspaces.get(workspace_id)
        if workspace is None:
            # The quiet span counts from when the partition changed hands: a workspace first seen later had
            # no starts by a predecessor in its window.
            owned_since = self._taken_at.get(partition, self._clock.now().timestamp())
            workspace = self._workspaces[workspace_id] = Workspace(
                workspace_id, partition, owned_since=owned_since
            )
            if self._in_flight_seconds <= 0:
                # No back-pressure from the dialers' starts: no slow start either (it grows with them).
                workspace.pace = DialerPace(cap=None, slow_start=False)
            # Warm the plan cache while the first batch is being applied: its first round needs the limits.
            warm = asyncio.create_task(self._warm_plan(workspace_id))
            self._background.add(warm)
            warm.add_done_callback(self._background.discard)
        if workspace.task is None and self._autostart and not self._stopping:
            workspace.task = asyncio.create_task(self._run(workspace), name=f"dispatch-{workspace_id}")
        return workspace

    async def _warm_plan(self, workspace_id: str) -> None:
        with contextlib.suppress(Exception):  # only a cache warm-up; the round asks again
            await self._plans.limits(workspace_id)

    def _fatal(self, exc: BaseException) -> None:
        self.poisoned = True
        log.critical("dispatcher state may be inconsistent; stopping", exc_info=exc)
        if self._on_fatal is not None:
            self._on_fatal(exc)

    # --- inbound events ------------------------------------------------------------------------------------

    async def apply(self, items: Sequence[tuple[int, Message]], traces: Traces | None = None) -> None:
        """Apply a polled batch of messages (partition, message); returns once their effects are durable.
        `traces` continues each message's trace in the work it causes, now or when its contact is dialed."""
        traces = traces or {}
        by_workspace: dict[str, list[tuple[int, Message]]] = {}
        for partition, message in items:
            by_workspace.setdefault(message.workspace_id, []).append((partition, message))
        try:
            for workspace_id, messages in by_workspace.items():
                workspace = self._workspace(workspace_id, messages[0][0])
                async with workspace.lock:
                    await self._apply_workspace(workspace, [m for _, m in messages], traces)
                    await self._save(workspace)
                workspace.wake.set()
        except Exception as exc:
            self._fatal(exc)
            raise

    async def _apply_workspace(self, workspace: Workspace, messages: list[Message], traces: Traces) -> None:
        contacts: list[ContactAccepted] = []
        ended: list[CallEnded] = []
        started: list[float | None] = []
        for message in messages:
            if isinstance(message, CallStarted):
                # Changes nothing else: applied at once, the pace learns of them below (with how late in
                # its slot each started, when its lease knows the slot).
                if message.attempt_id in workspace.unstarted:
                    workspace.unstarted.discard(message.attempt_id)
                    lease = workspace.leases.get(message.attempt_id)
                    slot = lease.slot if lease is not None else None
                    started.append(message.occurred_at.timestamp() - slot[0] if slot else None)
                continue
            if isinstance(message, ContactAccepted):
                if ended:
                    await self._apply_ended(workspace, ended, traces)
                    ended = []
                contacts.append(message)
                continue
            if isinstance(message, CallEnded):
                if contacts:
                    await self._apply_contacts(workspace, contacts, traces)
                    contacts = []
                ended.append(message)
                continue
            if contacts:
                await self._apply_contacts(workspace, contacts, traces)
                contacts = []
            if ended:
                await self._apply_ended(workspace, ended, traces)
                ended = []
            # Lifecycle commands are rare: each is handled in its own span, so what it publishes continues it.
            with _continued(
                f"dispatcher {type(message).__name__}",
                traces.get(message.event_id, ""),
                batch_id=message.correlation_id,
            ):
                await self._apply_lifecycle(workspace, message)
        if contacts:
            await self._apply_contacts(workspace, contacts, traces)
        if ended:
            await self._apply_ended(workspace, ended, traces)
        if started:
            cps, _ = await self._plans.limits(workspace.workspace_id)
            at = self._clock.now().timestamp()
            for lateness in started:
                workspace.pace.started(at, cps, lateness)

    async def _batch(self, workspace: Workspace, batch_id: str, *, save: bool = True) -> Batch | None:
        """The live batch, or None if it finished (retired) before; unknown batches start as stubs."""
        found = workspace.batches.get(batch_id)
        if found is not None:
            return found
        if batch_id in workspace.retired:
            return None
        doc = await self._store.finished_batch(batch_id)
        if doc is not None:
            workspace.retired[batch_id] = BatchState(doc.get("state", "completed"))
            return None
        batch = Batch(batch_id, workspace.workspace_id, workspace.partition)
        # Counted now, while the batch has no outcomes (or the few a crashed owner stored before saving
        # it), and from then on as outcomes are inserted: counted at its end, the count was a scan of the
        # whole batch's outcomes on the way to its completion (8.6 s at 100,000 contacts, bench.pipeline).
        batch.final_counts = dict(await self._store.outcome_counts(batch_id))
        workspace.batches[batch_id] = batch
        if save:
            # Saved before any of its contacts, so a new owner finds the batch that owns their segments.
            await self._store.save_batches([batch.to_document()])
        return batch

    async def _apply_lifecycle(self, workspace: Workspace, message: Message) -> None:
        now = self._clock.now()
        if isinstance(message, BatchAccepted):
            batch = await self._batch(workspace, message.batch_id, save=False)  # saved below
            if batch is None or batch.known:
                return
            batch.known = True
            batch.agent = message.agent
            batch.scheduled_at = message.scheduled_at
            batch.window_spec = message.calling_window
            batch.retry_spec = message.retry_policy
            batch.dry_run = message.dry_run
            batch.total_rows = message.total_rows
            batch.windows.clear()
            for lane in batch.lanes.values():
                lane.open_until = lane.closed_until = None
            # Saved at the end of this apply step, before the offsets are committed (with its contacts' lane
            # save, when they came in the same poll: one write fewer on the way to a new batch's first call).
            batch.dirty = batch.urgent = True
            return
        if isinstance(message, BatchIngested):
            batch = await self._batch(workspace, message.batch_id)
            if batch is None:
                return
            batch.ingested_accepted = message.accepted
            batch.ingested_skipped = message.skipped
            batch.total_rows = batch.total_rows or message.total_rows
            batch.dirty = batch.urgent = True
            return
        effects = Effects()
        if isinstance(message, CancelBatch):
            batch = await self._batch(workspace, message.batch_id)
            if batch is None or batch.state in (BatchState.CANCELLED, BatchState.COMPLETED):
                return
            batch.state = BatchState.CANCELLED
            await self._save_now(batch)
            log.info("batch cancelled", extra={"batch_id": batch.batch_id})
        elif isinstance(message, PauseBatch):
            batch = await self._batch(workspace, message.batch_id)
            if batch is None or batch.state is not BatchState.ACTIVE:
                return
            batch.state = BatchState.PAUSED
            await self._save_now(batch)
            effects.events.append(
                BatchPaused(
                    event_id=event_id(batch.batch_id, "paused", message.event_id),
                    occurred_at=now,
                    workspace_id=workspace.workspace_id,
                    correlation_id=batch.batch_id,
                    batch_id=batch.batch_id,
                )
            )
        elif isinstance(message, ResumeBatch):
            batch = await self._batch(workspace, message.batch_id)
            if batch is None or batch.state is not BatchState.PAUSED:
                return
            batch.state = BatchState.ACTIVE
            await self._save_now(batch)
            effects.events.append(
                BatchResumed(
                    event_id=event_id(batch.batch_id, "resumed", message.event_id),
                    occurred_at=now,
                    workspace_id=workspace.workspace_id,
                    correlation_id=batch.batch_id,
                    batch_id=batch.batch_id,
                )
            )
        await self._commit(workspace, effects)

    async def _apply_contacts(
        self, workspace: Workspace, messages: list[ContactAccepted], traces: Traces
    ) -> None:
        now = self._clock.now()
        effects = Effects()
        writes: list[tuple[Batch, Lane, int, list[QueuedContact]]] = []
        new_lane_batches: dict[str, Batch] = {}
        by_lane: dict[tuple[str, str], list[QueuedContact]] = {}
        in_call = {lease.contact.contact_id for lease in workspace.leases.values()}
        for message in messages:
            batch = await self._batch(workspace, message.batch_id)
            contact = QueuedContact(
                contact_id=message.contact_id,
                batch_id=message.batch_id,
                row_number=message.row_number,
                phone_number=message.phone_number,
                variables=dict(message.variables),
                lane=lane_key(message.phone_number),
                # No span per accepted contact (a million of them queue in one upload): the upload's context
                # is kept with the waiting entry and continued by the span that dials it.
                trace=traces.get(message.event_id, ""),
            )
            if batch is None:
                continue  # retired: every contact it accepted already ended, so this is a replay
            if not batch.accepts_contacts:
                # A cancelled (or finished dry-run) batch never dials a contact that arrives late; one in a
                # call right now (a replayed message) finishes with its call.
                if contact.contact_id not in in_call:
                    effects.terminal(
                        contact, "cancelled", "cancelled", 0, self._cancelled(workspace, contact, now)
                    )
                continue
            if contact.lane not in batch.lanes:
                batch.lane(contact.lane)
                new_lane_batches[batch.batch_id] = batch
            by_lane.setdefault((batch.batch_id, contact.lane), []).append(contact)
        if new_lane_batches:
            # Lane index -> key must be durable before the lane's first segment exists.
            for batch in new_lane_batches.values():
                batch.dirty = batch.urgent = False
                batch.saved_at = time.monotonic()
            await self._store.save_batches([b.to_document() for b in new_lane_batches.values()])
        for (batch_id, key), entries in by_lane.items():
            batch = workspace.batches[batch_id]
            lane = batch.lanes[key]
            for segment, chunk in lane.append(entries):
                writes.append((batch, lane, segment, chunk))
            batch.dirty = True
        for batch, lane, segment, chunk in writes:
            await self._store.append_segment(batch.batch_id, lane.index, segment, chunk)
        CONTACTS_QUEUED.inc(sum(len(chunk) for *_, chunk in writes))
        await self._commit(workspace, effects)

    async def _apply_ended(self, workspace: Workspace, messages: Sequence[CallEnded], traces: Traces) -> None:
        effects = Effects()
        now = self._clock.now()
        cps, _ = await self._plans.limits(workspace.workspace_id)
        for message in messages:
            workspace.unstarted.discard(message.attempt_id)
            lease = workspace.leases.pop(message.attempt_id, None)
            if lease is None:
                continue  # already applied, or its lease expired and a new attempt took over
            if message.provider_code == SLOT_MISSED:
                workspace.pace.missed(
                    now.timestamp(),
                    cps,
                    workspace.slots.recent_rate(cps),
                    lease.requested_at.timestamp(),
                )
            else:
                workspace.pace.kept(now.timestamp(), cps)
            # A span per call end (calls end at the start rate, far fewer than contacts arrive): the retry or
            # terminal event it decides continues the call's trace, published with the others below.
            with _continued(
                "dispatcher call ended",
                traces.get(message.event_id, ""),
                batch_id=message.batch_id,
                attempt_id=message.attempt_id,
            ):
                self._ended(
                    workspace,
                    lease,
                    message.outcome,
                    now,
                    effects,
                    _current_traceparent(),
                    missed_slot=message.provider_code == SLOT_MISSED,
                )
        await self._commit(workspace, effects)

    def _ended(
        self,
        workspace: Workspace,
        lease: Lease,
        outcome: Outcome,
        now: datetime,
        fx: Effects,
        trace: str = "",
        *,
        missed_slot: bool = False,
    ) -> None:
        """Decide a retry or the terminal state after an attempt; `trace` is the context its events and a
        retry's dial continue (the attempt's own trace when empty). An attempt the dialer got too late for
        its slot (`missed_slot`) is retried at once, as the next attempt: it was never dialed."""
        contact = lease.contact
        trace = trace or contact.trace
        fx.ended_leases.append(lease.attempt_id)
        OUTCOMES.labels(outcome.value).inc()
        batch = workspace.batches.get(contact.batch_id)
        if batch is None:
            return
        decision = batch.policy().decide(outcome, [Outcome(o) for o in contact.previous])
        if missed_slot:
            # Never dialed: our own scheduling, not the recipient's answer, so it never ends the contact
            # and uses nothing of its attempt budget (nor of the system-error retries).
            decision = Retry(0)
        elif batch.dry_run and isinstance(decision, Retry):
            decision = Finish(outcome)
        if isinstance(decision, Retry) and batch.state is BatchState.CANCELLED:
            cancelled = self._cancelled(workspace, contact, now)
            fx.terminal(contact, "cancelled", outcome.value, contact.attempt_number, cancelled, trace=trace)
            return
        if isinstance(decision, Retry):
            due = now + timedelta(seconds=0 if missed_slot else decision.wait_seconds)
            retry = QueuedContact(
                contact_id=contact.contact_id,
                batch_id=contact.batch_id,
                row_number=contact.row_number,
                phone_number=contact.phone_number,
                variables=contact.variables,
                lane=contact.lane,
                attempt_number=contact.attempt_number + 1,
                previous=contact.previous if missed_slot else (*contact.previous, outcome.value),
                trace=trace,
            )
            fx.timers.setdefault((batch.batch_id, minute_of(due)), []).append((retry, due))
            scheduled = RetryScheduled(
                event_id=event_id(attempt_id(contact.contact_id, retry.attempt_number), "retry"),
                occurred_at=now,
                workspace_id=workspace.workspace_id,
                correlation_id=batch.batch_id,
                batch_id=batch.batch_id,
                contact_id=contact.contact_id,
                next_attempt_number=retry.attempt_number,
                due_at=due,
                after_outcome=outcome,
            )
            fx.events.append(scheduled)
            fx.carry(scheduled, trace)
            return
        final = "completed" if outcome.successful else "failed"
        fx.terminal(
            contact,
            final,
            outcome.value,
            contact.attempt_number,
            ContactFinished(
                event_id=event_id(contact.contact_id, "finished"),
                occurred_at=now,
                workspace_id=workspace.workspace_id,
                correlation_id=batch.batch_id,
                batch_id=batch.batch_id,
                contact_id=contact.contact_id,
                outcome=outcome,
                attempts=contact.attempt_number,
            ),
            trace=trace,
        )
        if outcome is Outcome.OPTED_OUT:
            fx.opted_out.append((workspace.workspace_id, contact.phone_number))

    def _cancelled(self, workspace: Workspace, contact: QueuedContact, now: datetime) -> ContactCancelled:
        return ContactCancelled(
            event_id=event_id(contact.contact_id, "cancelled"),
            occurred_at=now,
            workspace_id=workspace.workspace_id,
            correlation_id=contact.batch_id,
            batch_id=contact.batch_id,
            contact_id=contact.contact_id,
        )

    async def _commit(self, workspace: Workspace, fx: Effects) -> None:
        """Durable facts first (outcomes, timers), then events, then the leases they free."""
        terminal: list[Message] = []
        for batch_id, docs in fx.outcomes.items():
            new = await self._store.insert_outcomes(batch_id, docs)
            counted = workspace.batches.get(batch_id)
            counts = counted.final_counts if counted is not None else None
            for doc in docs:
                if doc["_id"] in new:
                    OUTCOMES.labels(f"final_{doc['final']}").inc()
                    terminal.append(decode(doc["event"]))
                    if counts is not None:
                        counts[doc["final"]] = counts.get(doc["final"], 0) + 1
            taken = [str(doc["_id"]) for doc in docs if doc["_id"] not in new]
            if taken:
                # Already terminal (a replay, or a race with cancel): announce the state that is stored.
                terminal.extend(decode(doc["event"]) for doc in await self._store.outcomes(batch_id, taken))
        for (batch_id, minute), entries in fx.timers.items():
            batch = workspace.batches.get(batch_id)
            if batch is not None:
                await self._add_timers(batch, minute, entries)
        opted_out: dict[str, list[str]] = {}
        for workspace_id, number in fx.opted_out:
            opted_out.setdefault(workspace_id, []).append(number)
        for workspace_id, numbers in opted_out.items():
            await self._dnc.add(workspace_id, numbers, "opted_out")
        events = fx.events + [m for m in terminal if not isinstance(m, ContactSkipped)]
        if events:
            await self._sink.publish_many(events, carriers=fx.carriers)
        dispatch_events = fx.dispatch_events + [m for m in terminal if isinstance(m, ContactSkipped)]
        if dispatch_events:
            await self._sink.publish_many(dispatch_events, topic=Topic.DISPATCH_EVENTS, carriers=fx.carriers)
        if fx.ended_leases:
            await self._free_leases(workspace, fx.ended_leases)
            workspace.wake.set()

    async def _free_leases(self, workspace: Workspace, attempt_ids: Sequence[str]) -> None:
        """Record that these leases ended, in the order `Freed` names: a crash between the writes leaves a
        freed lease looking open to the next owner (it expires), never an open one looking freed."""
        freed = workspace.books.free(attempt_ids)
        if freed.pending:
            ends_id = uuid4().hex
            await self._store.insert_lease_ends(
                ends_id, workspace.partition, freed.ended, sorted(freed.pending)
            )
            workspace.books.recorded(ends_id, freed.pending)
        await self._store.delete_lease_books(sorted(freed.empty))
        await self._store.delete_lease_ends(sorted(freed.unreferenced))

    async def _save_now(self, batch: Batch) -> None:
        batch.dirty = batch.urgent = False
        batch.saved_at = time.monotonic()
        await self._store.save_batches([batch.to_document()])

    async def _save(self, workspace: Workspace, *, force: bool = False) -> None:
        if self.poisoned:
            return
        now = time.monotonic()
        due = [
            b
            for b in workspace.batches.values()
            if b.dirty and (force or b.urgent or now - b.saved_at >= SAVE_EVERY_SECONDS)
        ]
        for batch in due:
            batch.dirty = batch.urgent = False
            batch.saved_at = now
        if due:
            await self._store.save_batches([b.to_document() for b in due])

    # --- the dispatch loop ---------------------------------------------------------------------------------

    async def step(self, workspace_id: str) -> float:
        """Run one round of one workspace now (tests drive the loop with this and `autostart=False`)."""
        workspace = self._workspaces[workspace_id]
        async with workspace.lock:
            delay = await self._round(workspace)
            await self._save(workspace)
        return delay

    async def _run(self, workspace: Workspace) -> None:
        while True:
            try:
                async with workspace.lock:
                    started = time.perf_counter()
                    delay = await self._round(workspace)
                    await self._save(workspace)
                    ROUND_SECONDS.observe(time.perf_counter() - started)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._fatal(exc)
                return
            if delay > 0:
                workspace.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(workspace.wake.wait(), timeout=min(delay, IDLE_SECONDS))
            else:
                await asyncio.sleep(0)

    async def _round(self, workspace: Workspace) -> float:
        """One turn: expire leases, sweep cancelled work, then start what the limits allow.
        Returns how long to wait before the next turn (0: go again now)."""
        now = self._clock.now()
        t = now.timestamp()
        await self._expire_leases(workspace, now)
        for batch in list(workspace.batches.values()):
            if batch.state is BatchState.CANCELLED or batch.dry_run_done:
                await self._sweep(workspace, batch, now)
        await self._check_completion(workspace, now)
        cps, max_concurrent = await self._plans.limits(workspace.workspace_id)
        if t - workspace.gauges_at >= 1.0:
            workspace.gauges_at = t
            self._export_gauges(workspace, now, max_concurrent)
        if workspace.needs_quiet:
            span, _ = window_of(cps)
            workspace.quiet_until = workspace.owned_since + handover_quiet_seconds(
                span, slots_known=workspace.slots_known
            )
            workspace.needs_quiet = False
        if t < workspace.quiet_until:
            return workspace.quiet_until - t
        free = max_concurrent - len(workspace.leases)
        window = in_flight_limit(workspace.pace.start_rate(t), self._in_flight_seconds)
        if window is not None:
            free = min(free, window - len(workspace.unstarted))
        if free <= 0:
            return IDLE_SECONDS  # a CallStarted, a CallEnded or an expiry wakes us
        # Slots begin where this round's requests can reach a dialer (the round's own time under load is
        # part of it) and are planned up to the lead beyond, so the time a round takes does not cost
        # starts; a slot's call request holds its lease while it waits in the dialer.
        earliest = t + workspace.publish_lag + workspace.pace.hop
        rate = workspace.pace.rate(cps)  # the plan's rate, or less while the dialers fall behind it
        tolerance = workspace.pace.tolerance()
        slots = workspace.slots.take(
            earliest, cps, min(free, self._max_round), rate=rate, tolerance=tolerance
        )
        if not slots:
            return max(0.001, workspace.slots.wait(earliest, cps, rate=rate, tolerance=tolerance))
        workspace.pace.planned(t)
        picked = await self._pick(workspace, len(slots), now)
        if not picked:
            workspace.slots.give_back(len(slots))
            return IDLE_SECONDS
        await self._dispatch(workspace, picked, now, t, slots)
        return 0.0 if len(picked) == len(slots) else IDLE_SECONDS

    def _export_gauges(self, workspace: Workspace, now: datetime, max_concurrent: int) -> None:
        waiting = due = 0
        for batch in workspace.batches.values():
            if batch.state is BatchState.CANCELLED or not batch.live:
                continue
            dispatchable = batch.dispatchable(now)
            for key, lane in batch.lanes.items():
                waiting += lane.waiting
                if dispatchable and lane.waiting and batch.lane_open(key, now, lane):
                    due += lane.waiting
            waiting += len(batch.ready)
            if dispatchable:
                due += len(batch.ready)
        label = workspace.workspace_id
        WAITING_CONTACTS.labels(label).set(waiting)
        DUE_CONTACTS.labels(label).set(due)
        ACTIVE_CALLS.labels(label).set(len(workspace.leases))
        CONCURRENCY_LIMIT.labels(label).set(max_concurrent)

    async def _expire_leases(self, workspace: Workspace, now: datetime) -> None:
        expired = [lease for lease in workspace.leases.values() if lease.expires_at <= now]
        if not expired:
            return
        fx = Effects()
        for lease in expired:
            del workspace.leases[lease.attempt_id]
            workspace.unstarted.discard(lease.attempt_id)
            LEASES_EXPIRED.inc()
            # No end event in time: the slot comes back and the attempt counts as our failure.
            self._ended(workspace, lease, Outcome.SYSTEM_ERROR, now, fx)
        await self._commit(workspace, fx)

    async def _pick(self, workspace: Workspace, allowance: int, now: datetime) -> list[QueuedContact]:
        """Up to `allowance` contacts, one batch at a time in turn (fairness between batches)."""
        batches = [b for b in workspace.batches.values() if b.dispatchable(now)]
        picked: list[QueuedContact] = []
        empty: set[str] = set()
        while batches and len(picked) < allowance and len(empty) < len(batches):
            # True round robin: the turn moves past the batch just served, so an empty batch takes none.
            index = workspace.turn % len(batches)
            batch = batches[index]
            workspace.turn = index + 1
            if batch.batch_id in empty:
                continue
            contact = await self._next_of(batch, now)
            if contact is None:
                empty.add(batch.batch_id)
                continue
            picked.append(contact)
        return picked

    async def _next_of(self, batch: Batch, now: datetime) -> QueuedContact | None:
        retry = await self._next_retry(batch, now)
        if retry is not None:
            return retry
        if batch.dry_run:
            if batch.fresh_dispatched > 0:
                return None
            first = next(iter(batch.lanes.values()), None)  # lane 0 holds the first contact that arrived
            lanes = [first] if first is not None else []
        else:
            keys = list(batch.lanes.values())
            if not keys:
                return None
            batch.lane_turn = (batch.lane_turn + 1) % len(keys)
            lanes = keys[batch.lane_turn :] + keys[: batch.lane_turn]
        for lane in lanes:
            if lane.exhausted:
                continue
            if not batch.lane_open(lane.key, now, lane):
                continue
            contact = await self._take(batch, lane)
            if contact is not None:
                if batch.dry_run:
                    batch.fresh_dispatched += 1
                return contact
        return None

    async def _take(self, batch: Batch, lane: Lane) -> QueuedContact | None:
        while True:
            if lane.page is None:
                lane.load(await self._store.read_segment(batch.batch_id, lane.index, lane.cursor_segment))
            contact = lane.take()
            if contact is not None:
                batch.dirty = True
                return contact
            if lane.segment_consumed() and (
                lane.cursor_segment < lane.tail_segment or lane.tail_len >= SEGMENT_SIZE
            ):
                done = lane.next_segment()
                batch.dirty = True
                if lane.cursor_segment > lane.tail_segment:
                    lane.tail_segment, lane.tail_len = lane.cursor_segment, 0
                await self._store.drop_segment(batch.batch_id, lane.index, done)
                continue
            return None

    async def _next_retry(self, batch: Batch, now: datetime) -> QueuedContact | None:
        current = minute_of(now)
        for minute in sorted(
            m for m in batch.timer_minutes if m <= current and m not in batch.loaded_minutes
        ):
            entries = await self._store.read_timers(batch.batch_id, minute)
            batch.loaded_minutes[minute] = len(entries)
            batch.ready.extend((entry, due, minute) for entry, due in entries)
            if not entries:
                await self._consumed_timer(batch, minute)
        while True:
            index = next((i for i, (_, due, _) in enumerate(batch.ready) if due <= now), None)
            if index is None:
                return None
            entry, _, minute = batch.ready.pop(index)
            if not batch.lane_open(entry.lane, now, batch.lanes.get(entry.lane)):
                # Outside the window: wait in the minute bucket of its opening; never fail.
                opens = batch.next_open(entry.lane, now)
                await self._add_timers(batch, minute_of(opens), [(entry, opens)])
                await self._taken(batch, minute)
                continue
            await self._taken(batch, minute)
            return entry

    async def _add_timers(
        self, batch: Batch, minute: int, entries: list[tuple[QueuedContact, datetime]]
    ) -> None:
        await self._store.add_timers(batch.batch_id, minute, entries)
        batch.timer_minutes.add(minute)
        if minute in batch.loaded_minutes:
            # That bucket is already in memory: keep memory and store in step, or it would be dropped unread.
            batch.ready.extend((entry, due, minute) for entry, due in entries)
            batch.loaded_minutes[minute] += len(entries)

    async def _taken(self, batch: Batch, minute: int) -> None:
        if minute in batch.loaded_minutes:
            batch.loaded_minutes[minute] -= 1
            if batch.loaded_minutes[minute] <= 0:
                await self._consumed_timer(batch, minute)

    async def _consumed_timer(self, batch: Batch, minute: int) -> None:
        batch.loaded_minutes.pop(minute, None)
        batch.timer_minutes.discard(minute)
        await self._store.drop_timers(batch.batch_id, minute)

    async def _dispatch(
        self,
        workspace: Workspace,
        picked: list[QueuedContact],
        now: datetime,
        t: float,
        slots: Sequence[Slot],
    ) -> None:
        """Request calls for `picked` at the planned `slots` (one each, earliest first); the slots of
        contacts that are not requested after all are given back."""
        fx = Effects()
        listed = await self._dnc.listed(workspace.workspace_id, sorted({c.phone_number for c in picked}))
        dial: list[tuple[QueuedContact, Batch]] = []
        for contact in picked:
            batch = workspace.batches[contact.batch_id]
            if contact.phone_number in listed:
                fx.terminal(
                    contact,
                    "skipped",
                    SkipReason.DO_NOT_CALL.value,
                    contact.attempt_number - 1,
                    ContactSkipped(
                        event_id=event_id(contact.contact_id, "skipped"),
                        occurred_at=now,
                        workspace_id=workspace.workspace_id,
                        correlation_id=batch.batch_id,
                        batch_id=batch.batch_id,
                        contact_id=contact.contact_id,
                        row_number=contact.row_number,
                        phone_number=contact.phone_number,
                        reason=SkipReason.DO_NOT_CALL,
                        detail="listed at dial time",
                        variables=contact.variables,
                    ),
                    trace=contact.trace,
                )
                continue
            dial.append((contact, batch))
        leases: list[Lease] = []
        for (contact, batch), slot in zip(dial, slots, strict=False):
            agent = batch.agent
            assert agent is not None  # dispatchable() checked it
            # The lease runs from the latest start the slot allows: the request may wait in the dialer until
            # then. The lease keeps its slot, so a new owner plans around it.
            starts = datetime.fromtimestamp(slot.by, now.tzinfo)
            leases.append(
                Lease(
                    attempt_id=attempt_id(contact.contact_id, contact.attempt_number),
                    workspace_id=workspace.workspace_id,
                    partition=workspace.partition,
                    contact=contact,
                    requested_at=now,
                    expires_at=Lease.expiry(max(now, starts), agent.max_call_seconds, self._lease_grace),
                    slot=(slot.start, slot.by),
                )
            )
        requests: list[Message] = []
        carriers: dict[UUID, dict[str, str]] = {}
        traced: dict[tuple[str, str], list[UUID]] = {}
        if leases:
            # Lease before attempt: a crash between them leaves a lease (which expires), never a lost contact.
            # An attempt whose lease is open was requested before a crash: its lease stays in its book.
            unbooked = [lease for lease in leases if not workspace.books.holds(lease.attempt_id)]
            booked_now = {lease.attempt_id for lease in unbooked}
            if unbooked:
                book_id = uuid4().hex
                await self._store.insert_lease_book(
                    book_id, workspace.partition, [lease.to_document() for lease in unbooked]
                )
                workspace.books.opened(book_id, [lease.attempt_id for lease in unbooked])
            new_attempts = await self._store.insert_attempts(
                [
                    {
                        "_id": lease.attempt_id,
                        "workspace_id": workspace.workspace_id,
                        "batch_id": lease.contact.batch_id,
                        "requested_at": now,
                    }
                    for lease in unbooked
                ]
            )
            stale: list[str] = []
            for lease in leases:
                if lease.attempt_id not in new_attempts and lease.attempt_id in booked_now:
                    stale.append(lease.attempt_id)  # dialed before a crash and already ended: not again
                    continue
                # New, or dialed before a crash and still open: (re)publish; the dialer's claim dedupes.
                workspace.leases[lease.attempt_id] = lease
                workspace.unstarted.add(lease.attempt_id)
                batch = workspace.batches[lease.contact.batch_id]
                # Each request keeps its lease's slot: an attempt found already ended (after a crash) leaves
                # its slot unused, a gap that costs that start and nothing else.
                assert lease.slot is not None
                request = self._request(workspace, batch, lease, Slot(*lease.slot), now.tzinfo)
                requests.append(request)
                if lease.contact.trace:
                    traced.setdefault((lease.contact.trace, batch.batch_id), []).append(request.event_id)
                if not batch.started:
                    batch.started = True
                    batch.dirty = True
                    fx.events.append(
                        BatchStarted(
                            event_id=event_id(batch.batch_id, "started"),
                            occurred_at=now,
                            workspace_id=workspace.workspace_id,
                            correlation_id=batch.batch_id,
                            batch_id=batch.batch_id,
                        )
                    )
            await self._free_leases(workspace, stale)
            for (trace, batch_id), event_ids in traced.items():
                # The contacts waited outside any span (minutes, or a day): their requests continue the trace
                # they were queued in, one short span per trace and batch in the round (an upload's contacts
                # share one trace; a span per request cost a fifth of the dispatcher's time).
                with _continued("dispatcher dispatch", trace, batch_id=batch_id, requests=len(event_ids)):
                    carrier = inject_headers()
                for request_id in event_ids:
                    carriers[request_id] = carrier
        workspace.slots.give_back(len(slots) - len(leases))  # the latest ones: do-not-call at dial time
        if requests:
            await self._sink.publish_many(requests, carriers=carriers)
            CALL_REQUESTS.labels(workspace.workspace_id).inc(len(requests))
            lag = max(0.0, self._clock.now().timestamp() - t)
            workspace.publish_lag = expected_lag(workspace.publish_lag, lag)
            DISPATCH_DELAY.observe(lag)
        await self._commit(workspace, fx)

    def _request(
        self, workspace: Workspace, batch: Batch, lease: Lease, slot: Slot, zone: tzinfo | None
    ) -> CallRequested:
        contact = lease.contact
        assert batch.agent is not None
        return CallRequested(
            event_id=event_id(lease.attempt_id, "requested"),
            occurred_at=lease.requested_at,
            workspace_id=workspace.workspace_id,
            correlation_id=batch.batch_id,
            batch_id=batch.batch_id,
            contact_id=contact.contact_id,
            attempt_id=lease.attempt_id,
            attempt_number=contact.attempt_number,
            phone_number=contact.phone_number,
            variables=contact.variables,
            agent=batch.agent,
            lease_expires_at=lease.expires_at,
            not_before=datetime.fromtimestamp(slot.start, zone),
            start_by=datetime.fromtimestamp(slot.by, zone),
        )

    # --- cancel, dry run and completion --------------------------------------------------------------------

    async def _sweep(self, workspace: Workspace, batch: Batch, now: datetime) -> None:
        """Cancel waiting contacts one segment per turn (so the lock is never held long)."""
        fx = Effects()
        for lane in batch.lanes.values():
            if lane.exhausted:
                continue
            if lane.page is None:
                lane.load(await self._store.read_segment(batch.batch_id, lane.index, lane.cursor_segment))
            page = lane.page or []
            for contact in page:
                cancelled = self._cancelled(workspace, contact, now)
                fx.terminal(contact, "cancelled", "cancelled", contact.attempt_number - 1, cancelled)
            lane.cursor_pos += len(page)
            lane.page = []
            batch.dirty = True
            await self._commit(workspace, fx)
            if lane.segment_consumed() and (
                lane.cursor_segment < lane.tail_segment or lane.tail_len >= SEGMENT_SIZE
            ):
                done = lane.next_segment()
                if lane.cursor_segment > lane.tail_segment:
                    lane.tail_segment, lane.tail_len = lane.cursor_segment, 0
                await self._store.drop_segment(batch.batch_id, lane.index, done)
            return
        if batch.state is not BatchState.CANCELLED:
            return  # a finished dry run keeps its (single) retry-free attempt; nothing else to sweep
        for minute in sorted(batch.timer_minutes):
            if minute not in batch.loaded_minutes:
                entries = await self._store.read_timers(batch.batch_id, minute)
                batch.ready.extend((entry, due, minute) for entry, due in entries)
            batch.loaded_minutes.pop(minute, None)
        for entry, _, _ in batch.ready:
            if attempt_id(entry.contact_id, entry.attempt_number) in workspace.leases:
                continue
            cancelled = self._cancelled(workspace, entry, now)
            fx.terminal(entry, "cancelled", "cancelled", entry.attempt_number - 1, cancelled)
        batch.ready.clear()
        await self._commit(workspace, fx)
        for minute in sorted(batch.timer_minutes):
            await self._store.drop_timers(batch.batch_id, minute)
        batch.timer_minutes.clear()
        if not batch.cancel_swept:
            batch.cancel_swept = True
            counts = await self._counts(batch)
            await self._sink.publish_many(
                [
                    BatchCancelled(
                        event_id=event_id(batch.batch_id, "cancelled"),
                        occurred_at=now,
                        workspace_id=workspace.workspace_id,
                        correlation_id=batch.batch_id,
                        batch_id=batch.batch_id,
                        counts=counts,
                    )
                ]
            )
            await self._save_now(batch)

    async def _counts(self, batch: Batch) -> BatchCounts:
        if batch.final_counts is None:
            batch.final_counts = dict(await self._store.outcome_counts(batch.batch_id))
        counts = batch.final_counts
        return BatchCounts(
            total=batch.total_rows,
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            cancelled=counts.get("cancelled", 0),
            skipped=batch.ingested_skipped + counts.get("skipped", 0),
        )

    async def _check_completion(self, workspace: Workspace, now: datetime) -> None:
        clock = now.timestamp()
        for batch in list(workspace.batches.values()):
            if not batch.known or batch.ingested_accepted is None or not batch.queue_drained():
                continue
            if workspace.leases_of(batch.batch_id):
                continue
            if batch.state is BatchState.CANCELLED and not batch.cancel_swept:
                continue
            if clock - batch.checked_at < COMPLETION_CHECK_SECONDS:
                continue
            batch.checked_at = clock
            counts = await self._counts(batch)
            ended = (
                counts.completed
                + counts.failed
                + counts.cancelled
                + (counts.skipped - batch.ingested_skipped)
            )
            if ended < batch.ingested_accepted:
                continue  # contacts still on their way (a cancelled batch cancels them as they arrive)
            if batch.state is BatchState.CANCELLED:
                await self._retire(workspace, batch)
                continue
            await self._sink.publish_many(
                [
                    BatchCompleted(
                        event_id=event_id(batch.batch_id, "completed"),
                        occurred_at=now,
                        workspace_id=workspace.workspace_id,
                        correlation_id=batch.batch_id,
                        batch_id=batch.batch_id,
                        counts=counts,
                    )
                ]
            )
            batch.state = BatchState.COMPLETED
            await self._retire(workspace, batch)
            log.info("batch completed", extra={"batch_id": batch.batch_id})

    async def _retire(self, workspace: Workspace, batch: Batch) -> None:
        doc = batch.to_document()
        await self._store.retire_batch(doc)
        workspace.retired[batch.batch_id] = batch.state
        del workspace.batches[batch.batch_id]
