"""Use cases of the status service: projecting a chunk of events into the read models.

One `Projector` is the only writer of every status document (ADR 0040): it consumes all topics in one
consumer and handles a chunk of records at a time, so no two coroutines ever write the same document.

Crash safety without transactions. Call documents are semilattices (re-applying an event is a no-op), but
batch counts are sums of deltas and must take each call change exactly once. So the projector's record of
each batch keeps, per Kafka partition, the highest offset whose effects it holds. A chunk is written in this
order: feed entries and webhook outbox items (idempotent ids), then the batch records, then call versions,
then the batch documents readers see (ADR 0043), then the consumer commits. If the process dies part-way,
the chunk is delivered again: an event at or below the batch's recorded offset changes only its call
document (whose delta the batch already holds), any other event is applied in full against the call
document as it was before the chunk — which is still what is stored, because call documents are written
after the records. That holds only if every counted event is applied before any new one: so counted events
go first within a chunk, and the chunk after a failure or a restart reaches at least as far as the batch
records do on every partition (`run_projection` re-projects the same records after a failure, and after
an assignment polls up to the records' horizon), else a new event could be measured against a call
document that still lacks a counted change, and that change would be counted twice. A batch whose
record is read from the store (a new process, or after a failure) has its shown document written again
with the next chunk that touches it, in case a crash came before that write.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from prometheus_client import Counter

from status.domain.batches import (
    BatchView,
    Contribution,
    Tally,
    apply_batch_event,
    apply_tally,
    contribution,
    is_batch_event,
    new_batch,
)
from status.domain.calls import CallView, apply_call_event, is_call_event, row_number_of
from status.domain.clock import epoch_ms
from status.domain.notifications import (
    WEBHOOK_EVENTS,
    FeedItem,
    Notice,
    batch_notices,
    call_feed_item,
    call_notices,
    counts_data,
    newly_started_attempt,
    progress_item,
)
from status.domain.signing import REFERENCE_SIGNATURE_HEADER, SIGNATURE_HEADER, signature
from status.ports import (
    YIELD_EVERY,
    CallWrite,
    Changes,
    DeliveryLog,
    Endpoint,
    FeedEntry,
    Outbox,
    OutboxItem,
    ReadModels,
    Record,
    StatusLists,
    StoredBatch,
    StoredCall,
    WebhookRoutes,
    WebhookSender,
)

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "batchcalls_status_webhook_attempts_total", "Webhook delivery attempts by result.", ["result"]
)

_MAX_TRACKED_ROW = 10_000_000


class _WrittenRows:
    """The rows of one batch whose call documents exist, kept for a batch whose record did not exist when
    first seen (no call document of it can exist that we did not write: call documents are always written
    after their batch record) or whose calls were all read in one pass; so a miss needs no database read."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray()

    def has(self, row: int) -> bool:
        byte = row >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (row & 7)))

    def add(self, row: int) -> None:
        byte = row >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte - len(self._bits) + 1 + len(self._bits) // 2))
        self._bits[byte] |= 1 << (row & 7)


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """What one chunk did, for metrics and logs."""

    records: int
    batches_written: int
    calls_written: int
    feed_entries: int
    outbox_items: int


_V = TypeVar("_V")


def _trim(cache: OrderedDict[str, _V], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)


class Projector:
    """Applies chunks of events to the batch and call documents, keeping recently used documents in memory
    (bounded) so a busy batch is not read back for every chunk."""

    def __init__(
        self,
        store: ReadModels,
        routes: WebhookRoutes,
        *,
        now_ms: Callable[[], int],
        cache_size: int = 200_000,
        batch_cache_size: int = 1_000,
        notice_max_age_ms: int = 24 * 3600 * 1000,
    ) -> None:
        self._store = store
        self._routes = routes
        self._now_ms = now_ms
        self._cache_size = cache_size
        self._batch_cache_size = batch_cache_size
        self._notice_max_age_ms = notice_max_age_ms
        self._calls: OrderedDict[str, StoredCall] = OrderedDict()
        self._batches: OrderedDict[str, StoredBatch] = OrderedDict()
        self._written: OrderedDict[str, _WrittenRows] = OrderedDict()
        self._unshown: set[str] = set()
        self._notices_from_ms = 0

    def send_notices_from(self, at_ms: int) -> None:
        """Queue no webhook for a change that happened before `at_ms` (a rebuild replays history whose
        notices were sent when it happened)."""
        self._notices_from_ms = at_ms

    def forget(self) -> None:
        """Drops everything held in memory, so the next chunk reads the documents again (after a failure)."""
        self._calls.clear()
        self._batches.clear()
        self._written.clear()
        self._unshown.clear()

    # --- loading ---------------------------------------------------------------------------------------

    async def _load_batches(self, records: Sequence[Record]) -> dict[str, StoredBatch]:
        work: dict[str, StoredBatch] = {}
        for record in records:
            message = record.message
            batch_id = message.batch_id
            if batch_id in work:
                continue
            cached = self._batches.get(batch_id)
            if cached is None:
                cached = await self._store.load_batch(batch_id)
                if cached is None:
                    cached = StoredBatch(new_batch(batch_id, message.workspace_id), StatusLists())
                    self._written[batch_id] = _WrittenRows()
                    _trim(self._written, self._batch_cache_size)
                else:
                    # Its shown document may trail the record (a crash between the two writes).
                    self._unshown.add(batch_id)
                self._batches[batch_id] = cached
            # Lists change while projecting: work on a copy, so a failed write leaves the cache intact.
            work[batch_id] = StoredBatch(cached.view, cached.lists.copy())
        return work

    def _known_absent(self, contact_id: str, batch_id: str) -> bool:
        written = self._written.get(batch_id)
        if written is None:
            return False
        row = row_number_of(contact_id)
        return row is not None and row < _MAX_TRACKED_ROW and not written.has(row)

    async def _load_calls(
        self, records: Sequence[Record], batches: dict[str, StoredBatch]
    ) -> dict[str, StoredCall | None]:
        """The touched call documents as stored now (None: absent)."""
        work: dict[str, StoredCall | None] = {}
        missing: dict[str, list[str]] = {}
        for record in records:
            message = record.message
            if not is_call_event(message):
                continue
            contact_id = message.contact_id
            if contact_id in work:
                continue
            cached = self._calls.get(contact_id)
            if cached is not None:
                self._calls.move_to_end(contact_id)
                work[contact_id] = cached
            else:
                work[contact_id] = None
                if not self._known_absent(contact_id, message.batch_id):
                    missing.setdefault(message.batch_id, []).append(contact_id)
        for batch_id, contact_ids in missing.items():
            if len(contact_ids) > 1 and batches[batch_id].view.total <= self._cache_size:
                work.update(await self._read_batch_calls(batch_id, contact_ids))
            elif len(contact_ids) > 1:
                work.update(await self._read_near(batch_id, contact_ids))
            else:
                work.update(await self._store.load_calls(contact_ids))
        return work

    async def _read_near(self, batch_id: str, wanted: list[str]) -> dict[str, StoredCall]:
        """Calls of a batch larger than the cache, read with their stored neighbours, which are kept too: a
        replay consumes each topic at its own pace, so a chunk of one topic's events asks for contacts
        whose documents fell out of the cache while another topic was read, in row order; read one at a
        time they cost a query each (827 events/s at 100,000 contacts, against 3,774 at 20,000)."""
        found = await self._store.load_calls_near(batch_id, wanted)
        for contact_id, stored in found.items():
            self._calls[contact_id] = stored
            self._calls.move_to_end(contact_id)
        _trim(self._calls, self._cache_size)
        return {c: found[c] for c in wanted if c in found}

    async def _read_batch_calls(self, batch_id: str, wanted: list[str]) -> dict[str, StoredCall]:
        """Every call of a batch whose calls are not in memory (a new process, or after a failure), read in
        one pass and kept: reading them one at a time would cost a scan each on FerretDB's SQLite backend,
        which is what left a restarted projector minutes behind at 20,000 contacts (ADR 0043)."""
        found = await self._store.load_batch_calls(batch_id)
        rows = _WrittenRows()
        untracked = False
        for contact_id, stored in found.items():
            row = row_number_of(contact_id)
            if row is None or row >= _MAX_TRACKED_ROW:
                untracked = True
            else:
                rows.add(row)
            self._calls[contact_id] = stored
        if not untracked:
            self._written[batch_id] = rows
            _trim(self._written, self._batch_cache_size)
        _trim(self._calls, self._cache_size)
        return {c: found[c] for c in wanted if c in found}

    # --- projecting ------------------------------------------------------------------------------------

    async def project(self, records: Sequence[Record]) -> ChunkSummary:
        """Applies `records` (in consumption order) and writes the changed documents."""
        stored_batches = await self._load_batches(records)
        stored_calls = await self._load_calls(records, stored_batches)
        batches = {batch_id: stored.view for batch_id, stored in stored_batches.items()}
        calls: dict[str, CallView | None] = {
            contact_id: stored.view if stored else None for contact_id, stored in stored_calls.items()
        }
        dirty_calls: dict[str, None] = {}
        offsets: dict[str, dict[str, int]] = {}
        feed: dict[str, list[FeedItem]] = {}
        notices: list[Notice] = []
        # What each changed call contributed before its first change in this chunk: its batch takes the
        # difference to what it contributes after the chunk, once (sums telescope), and the latest time it
        # was terminal at along the way (the one part that is not a sum).
        contributed: dict[str, Contribution] = {}
        terminal_at: dict[str, int] = {}
        last_at: dict[str, int] = {}
        listened = await self._listened(records)

        def notified(batch: BatchView) -> bool:
            """Whether anyone takes webhooks of the batch (its workspace's endpoints or its own URL)."""
            accepted = batch.accepted
            return batch.workspace_id in listened or (accepted is not None and bool(accepted.webhook_url))

        def is_counted(record: Record) -> bool:
            held = stored_batches[record.message.batch_id].view.offsets
            return held.get(record.position.partition, -1) >= record.position.offset

        # Events the batch record already counts go first: they bring the call documents up to what the
        # record holds (a crash may have come before their call versions were written) before any new
        # event is measured against them. The redelivered chunk holds every such event (run_projection).
        counted_first = sorted(records, key=lambda r: not is_counted(r))
        for index, record in enumerate(counted_first):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            message = record.message
            batch_id = message.batch_id
            batch = batches[batch_id]
            position = record.position
            counted = is_counted(record)
            if counted:
                # Already in the batch document (a chunk written again after a crash): only the call
                # document, whose change the batch already holds, may still need it.
                if is_call_event(message):
                    old = calls[message.contact_id]
                    new = apply_call_event(old, message)
                    if new is not old and new != old:
                        calls[message.contact_id] = new
                        dirty_calls[message.contact_id] = None
                continue
            offsets.setdefault(batch_id, {})[position.partition] = position.offset
            at = epoch_ms(message.occurred_at)
            last_at[batch_id] = at
            if is_call_event(message):
                contact_id = message.contact_id
                old = calls[contact_id]
                new = apply_call_event(old, message)
                if new is old or new == old:
                    continue
                calls[contact_id] = new
                dirty_calls[contact_id] = None
                if contact_id not in contributed:
                    contributed[contact_id] = contribution(old)
                ended = new.terminal_at
                if ended is not None and ended > terminal_at.get(batch_id, -1):
                    terminal_at[batch_id] = ended
                item = call_feed_item(old, new, at)
                if item is not None:
                    feed.setdefault(batch_id, []).append(item)
                if notified(batch):
                    notices.extend(call_notices(old, new, batch, newly_started_attempt(old, new), at))
            elif is_batch_event(message):
                batches[batch_id] = apply_batch_event(batch, message)

        tallies: dict[str, Tally] = {}
        for contact_id, before_part in contributed.items():
            view = calls[contact_id]
            assert view is not None
            tally = tallies.get(view.batch_id)
            if tally is None:
                tally = tallies[view.batch_id] = Tally()
            tally.add(before_part, contribution(view))
        for batch_id, tally in tallies.items():
            if batch_id in terminal_at:
                tally.reached_terminal(terminal_at[batch_id])
            batches[batch_id] = apply_tally(batches[batch_id], tally)
        for batch_id, batch in batches.items():
            was = stored_batches[batch_id].view.status
            if batch_id in last_at and batch.status != was:
                at = last_at[batch_id]
                feed.setdefault(batch_id, []).append(
                    FeedItem(f"batch.{batch.status.value}", {**counts_data(batch), "at": at})
                )
                notices.extend(batch_notices(was, batch, at))

        changes = Changes()
        for contact_id in dirty_calls:
            view = calls[contact_id]
            assert view is not None
            previous = stored_calls[contact_id]
            lists = stored_batches[view.batch_id].lists
            if previous is not None:
                lists.leave(previous.view.status.value, previous.pos)
            pos = lists.enter(view.status.value)
            version = previous.version + 1 if previous else 1
            changes.calls.append(CallWrite(view, version, pos, previous))
        for batch_id, batch in batches.items():
            before = stored_batches[batch_id].view
            moved = offsets.get(batch_id)
            lists = stored_batches[batch_id].lists
            lists_changed = lists != self._batches[batch_id].lists
            if moved is None and batch == before and not lists_changed:
                continue
            if batch.counts != before.counts or batch.status != before.status:
                feed.setdefault(batch_id, []).append(progress_item(batch))
            seq = batch.feed_seq
            for item in feed.get(batch_id, ()):
                seq += 1
                changes.feed.append(FeedEntry(batch_id, batch.workspace_id, seq, item.kind, item.data))
            batch = replace(batch, feed_seq=seq, offsets={**batch.offsets, **(moved or {})})
            batches[batch_id] = batch
            if batch != before or lists_changed:
                changes.batches.append(StoredBatch(batch, lists))
        changes.shown.extend(changes.batches)
        written = {stored.view.batch_id for stored in changes.batches}
        unshown = [batch_id for batch_id in stored_batches if batch_id in self._unshown]
        changes.shown.extend(stored_batches[b] for b in unshown if b not in written)
        changes.outbox.extend(await self._address(notices, batches, listened))

        await self._store.save(changes)
        self._unshown.difference_update(unshown)
        self._remember(changes)
        return ChunkSummary(
            records=len(records),
            batches_written=len(changes.batches),
            calls_written=len(changes.calls),
            feed_entries=len(changes.feed),
            outbox_items=len(changes.outbox),
        )

    async def _listened(self, records: Sequence[Record]) -> dict[str, Sequence[Endpoint]]:
        """The endpoints of the workspaces among `records` that have any (a cached lookup each)."""
        routes = {w: await self._routes.endpoints(w) for w in {r.message.workspace_id for r in records}}
        return {w: endpoints for w, endpoints in routes.items() if endpoints}

    async def _address(
        self, notices: list[Notice], batches: dict[str, BatchView], routes: dict[str, Sequence[Endpoint]]
    ) -> list[OutboxItem]:
        """Each notice once per endpoint that wants it (`routes`: the chunk's workspaces with endpoints);
        old notices (a replay of history) are not sent."""
        if not notices:
            return []
        oldest = max(self._now_ms() - self._notice_max_age_ms, self._notices_from_ms)
        items: dict[str, OutboxItem] = {}
        for notice in notices:
            if notice.created_at < oldest:
                continue
            targets = list(routes.get(notice.workspace_id, ()))
            batch = batches.get(notice.batch_id)
            if batch is not None and batch.accepted is not None and batch.accepted.webhook_url:
                targets.append(
                    Endpoint(
                        batch.batch_id,
                        batch.workspace_id,
                        batch.accepted.webhook_url,
                        frozenset(WEBHOOK_EVENTS),
                    )
                )
            body = json.dumps(notice.payload(), separators=(",", ":"), sort_keys=True)
            for endpoint in targets:
                if notice.event not in endpoint.events:
                    continue
                item_id = f"{endpoint.endpoint_id}:{notice.notice_id}"
                items[item_id] = OutboxItem(
                    item_id=item_id,
                    endpoint_id=endpoint.endpoint_id,
                    workspace_id=notice.workspace_id,
                    url=endpoint.url,
                    notice_id=notice.notice_id,
                    event=notice.event,
                    created_at=notice.created_at,
                    body=body,
                )
        return list(items.values())

    def _remember(self, changes: Changes) -> None:
        for stored in changes.batches:
            self._batches[stored.view.batch_id] = stored
            self._batches.move_to_end(stored.view.batch_id)
        for write in changes.calls:
            view = write.view
            self._calls[view.contact_id] = StoredCall(view, write.version, write.pos)
            self._calls.move_to_end(view.contact_id)
            written = self._written.get(view.batch_id)
            row = row_number_of(view.contact_id)
            if written is not None and row is not None and row < _MAX_TRACKED_ROW:
                written.add(row)
        _trim(self._calls, self._cache_size)
        _trim(self._batches, self._batch_cache_size)


# --- webhook delivery -----------------------------------------------------------------------------------


def _retryable(status: int | None) -> bool:
    """Network errors, timeouts, 408, 429 and 5xx are retried; any other answer is final."""
    return status is None or status in (408, 425, 429) or status >= 500


class WebhookDeliverer:
    """Delivers outbox items with retries and exponential backoff, apart from projection (a slow receiver
    never delays the read models). Every attempt is logged for the endpoint's delivery log; an item leaves
    the outbox once its delivery is final, so the outbox stays as small as what is pending (FerretDB scans a
    collection for any query but `_id`)."""

    def __init__(
        self,
        outbox: Outbox,
        log_: DeliveryLog,
        sender: WebhookSender,
        *,
        now_ms: Callable[[], int],
        max_attempts: int,
        backoff_ms: int,
        backoff_max_ms: int,
        concurrency: int = 16,
    ) -> None:
        self._outbox = outbox
        self._log = log_
        self._sender = sender
        self._now_ms = now_ms
        self._max_attempts = max_attempts
        self._backoff_ms = backoff_ms
        self._backoff_max_ms = backoff_max_ms
        self._concurrency = asyncio.Semaphore(concurrency)
        self._known: set[str] = set()
        self._finished: list[str] = []
        self._due: list[tuple[int, int, OutboxItem, int]] = []
        self._counter = 0
        self._started = False

    def backoff(self, attempt: int) -> int:
        return int(min(self._backoff_max_ms, self._backoff_ms * 2 ** (attempt - 1)))

    def _schedule(self, at: int, item: OutboxItem, attempt: int) -> None:
        self._counter += 1
        heapq.heappush(self._due, (at, self._counter, item, attempt))

    async def scan(self) -> int:
        """Schedules the outbox items not seen yet (at the first scan, skipping those a previous process
        already finished); removes finished ones. Returns how many were scheduled."""
        if self._finished:
            finished, self._finished = self._finished, []
            await self._outbox.remove(finished)
            self._known.difference_update(finished)
        now = self._now_ms()
        scheduled = 0
        for item in await self._outbox.pending():
            if item.item_id in self._known:
                continue
            self._known.add(item.item_id)
            if not self._started and await self._log.final_logged(item.item_id, self._max_attempts):
                self._finished.append(item.item_id)
                continue
            self._schedule(now, item, 1)
            scheduled += 1
        self._started = True
        return scheduled

    async def deliver_due(self) -> int:
        """Sends every item that is due now; returns how many attempts were made."""
        now = self._now_ms()
        ready: list[tuple[OutboxItem, int]] = []
        while self._due and self._due[0][0] <= now:
            _, _, item, attempt = heapq.heappop(self._due)
            ready.append((item, attempt))
        await asyncio.gather(*(self._attempt(item, attempt) for item, attempt in ready))
        return len(ready)

    @property
    def pending(self) -> int:
        return len(self._due)

    async def _attempt(self, item: OutboxItem, attempt: int) -> None:
        async with self._concurrency:
            started = self._now_ms()
            secret = await self._log.secret_for(item.workspace_id, item.endpoint_id)
            status: int | None
            error: str | None
            if secret is None:
                status, error = None, "endpoint deleted"
                final = True
            else:
                body = item.body.encode()
                signed = signature(secret, started // 1000, body)
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signed,
                    REFERENCE_SIGNATURE_HEADER: signed,
                    "X-Batchcalls-Event": item.event,
                    "X-Batchcalls-Delivery": item.notice_id,
                    "User-Agent": "batchcalls-webhooks/1",
                }
                status, error = await self._sender.post(item.url, body, headers)
                ok = status is not None and 200 <= status < 300
                final = ok or not _retryable(status) or attempt >= self._max_attempts
            ended = self._now_ms()
            delivered = status is not None and 200 <= status < 300
            next_at = None if final else ended + self.backoff(attempt)
            await self._log.log(
                {
                    "_id": f"{item.item_id}#{attempt}",
                    "item_id": item.item_id,
                    "endpoint_id": item.endpoint_id,
                    "workspace_id": item.workspace_id,
                    "notice_id": item.notice_id,
                    "event": item.event,
                    "attempt": attempt,
                    "status_code": status,
                    "error": error,
                    "delivered": delivered,
                    "final": final,
                    "at": ended,
                    "duration_ms": ended - started,
                    "next_attempt_at": next_at,
                }
            )
            DELIVERIES.labels("delivered" if delivered else "gave_up" if final else "retrying").inc()
            if next_at is not None:
                self._schedule(next_at, item, attempt + 1)
            else:
                self._finished.append(item.item_id)

    async def run(self, stopping: asyncio.Event, poll_seconds: float) -> None:
        while not stopping.is_set():
            try:
                await self.scan()
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=poll_seconds)
