"""The projector over in-memory read models: order tolerance, duplicates, crash recovery, no drift."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import BatchCancelled, BatchCompleted
from shared.outcomes import BatchStatus
from status.domain.batches import BatchView, Counts
from status.domain.clock import epoch_ms
from status.domain.notifications import WEBHOOK_EVENTS
from status.handlers import Projector
from status.ports import Endpoint, Record, StoredBatch
from tests.unit.status.fakes import Crash, MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import T0, History, chunks, history, interleave

pytestmark = pytest.mark.unit

NOW = epoch_ms(T0) + 3_600_000
ENDPOINT = Endpoint("wh_1", "ws_1", "http://127.0.0.1:9/hook", frozenset(WEBHOOK_EVENTS))


def _projector(store: MemoryReadModels, cache_size: int = 50_000) -> Projector:
    return Projector(store, StaticRoutes([ENDPOINT]), now_ms=lambda: NOW, cache_size=cache_size)


def _public(stored: StoredBatch) -> BatchView:
    """The batch document without the feed's bookkeeping, which depends on how events were chunked."""
    return replace(stored.view, feed_seq=0)


async def _project_all(
    store: MemoryReadModels, records: list[Record], rng: random.Random, cache: int
) -> None:
    projector = _projector(store, cache)
    for chunk in chunks(records, rng):
        await projector.project(chunk)


async def _reference(h: History) -> MemoryReadModels:
    store = MemoryReadModels()
    await _projector(store).project(h.records())
    return store


def _final_counts(h: History) -> BatchCompleted | BatchCancelled:
    last = h.messages[-1]
    assert isinstance(last, BatchCompleted | BatchCancelled)
    return last


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100_000),
    order_seed=st.integers(0, 2**32),
    cancel=st.booleans(),
    cache=st.sampled_from([0, 3, 50_000]),
)
async def test_any_consumption_order_and_chunking_gives_the_same_documents(
    seed: int, order_seed: int, cancel: bool, cache: int
) -> None:
    order = random.Random(order_seed)
    h = history(seed, rows=10, cancel=cancel)
    expected = await _reference(h)
    store = MemoryReadModels()
    await _project_all(store, interleave(h.records(), order), order, cache)
    assert store.call_views() == expected.call_views()
    assert {k: _public(v) for k, v in store.batches.items()} == {
        k: _public(v) for k, v in expected.batches.items()
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), cancel=st.booleans())
async def test_counts_add_up_and_match_the_dispatchers_final_counts(seed: int, cancel: bool) -> None:
    h = history(seed, rows=12, cancel=cancel)
    store = await _reference(h)
    batch = store.batches[h.batch_id].view
    final = _final_counts(h).counts
    shown = batch.shown_counts
    assert shown == Counts(
        waiting=0,
        active=0,
        completed=final.completed,
        failed=final.failed,
        cancelled=final.cancelled,
        skipped=final.skipped,
    )
    assert shown.seen == batch.total == h.rows
    assert batch.is_complete
    assert batch.status is (
        BatchStatus.CANCELLED
        if cancel
        else BatchStatus.FAILED
        if final.completed == 0 and final.failed
        else BatchStatus.COMPLETED
    )
    # Billing is the sum over the calls' billable attempts.
    billable = [a for c in store.calls.values() for a in c.view.billable_attempts]
    assert batch.billable_attempts == len(billable)
    assert batch.billable_ms == sum(a.ending.duration_ms for a in billable if a.ending)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), order_seed=st.integers(0, 2**32))
async def test_redelivery_and_replay_change_nothing(seed: int, order_seed: int) -> None:
    order = random.Random(order_seed)
    h = history(seed, rows=8)
    store = await _reference(h)
    calls, batches, outbox = dict(store.calls), dict(store.batches), dict(store.outbox)
    projector = _projector(store)
    records = h.records()
    # A replay of everything (a consumer that lost its offsets), then a random redelivered tail.
    await projector.project(records)
    await projector.project(records[order.randrange(len(records)) :])
    assert store.calls == calls
    assert store.batches == batches
    assert store.outbox == outbox


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), order_seed=st.integers(0, 2**32), cache=st.sampled_from([0, 50_000]))
async def test_a_crash_part_way_through_a_write_is_repaired_by_redelivery(
    seed: int, order_seed: int, cache: int
) -> None:
    order = random.Random(order_seed)
    h = history(seed, rows=8, cancel=order.random() < 0.3)
    expected = await _reference(h)
    store = MemoryReadModels()
    projector = _projector(store, cache)
    pending = chunks(interleave(h.records(), order), order)
    crashes = 0
    while pending:
        chunk = pending[0]
        if order.random() < 0.3:
            store.crash_after = order.randrange(6)
        try:
            await projector.project(chunk)
        except Crash:
            crashes += 1
            projector = _projector(store, cache)  # a new process: nothing in memory
            # Nothing was committed: the chunk comes again, at least as far as it reached (the horizon),
            # perhaps with more behind it, and interleaved across partitions in another order.
            if len(pending) > 1 and order.random() < 0.5:
                chunk = chunk + pending.pop(1)
            pending[0] = interleave(chunk, order)
            continue
        store.crash_after = None
        pending.pop(0)
    assert store.call_views() == expected.call_views()
    assert {k: _public(v) for k, v in store.batches.items()} == {
        k: _public(v) for k, v in expected.batches.items()
    }


async def test_a_new_batch_is_projected_without_reading_call_documents() -> None:
    h = history(7, rows=30)
    store = MemoryReadModels()
    projector = _projector(store)
    for chunk in chunks(h.records(), random.Random(1), largest=20):
        await projector.project(chunk)
    assert store.reads == 0


async def test_webhooks_are_queued_once_per_endpoint_with_deterministic_ids() -> None:
    h = history(11, rows=6, webhook_url="http://127.0.0.1:9/batch-hook")
    store = await _reference(h)
    events = sorted(item.event for item in store.outbox.values() if item.endpoint_id == "wh_1")
    per_batch = sorted(item.event for item in store.outbox.values() if item.endpoint_id == h.batch_id)
    assert events == per_batch
    assert events.count("batch.started") == 1
    assert events.count("batch.completed") == 1
    finished = store.batches[h.batch_id].view.shown_counts
    assert events.count("call.completed") == finished.completed
    assert events.count("call.failed") == finished.failed
    started = sum(1 for c in store.calls.values() for a in c.view.attempts if a.started_at is not None)
    assert events.count("call.started") == started
    assert all(item.item_id == f"{item.endpoint_id}:{item.notice_id}" for item in store.outbox.values())


async def test_history_older_than_the_notice_age_is_not_sent_again() -> None:
    h = history(12, rows=4)
    store = MemoryReadModels()
    late = Projector(store, StaticRoutes([ENDPOINT]), now_ms=lambda: NOW + 10 * 86_400_000)
    await late.project(h.records())
    assert store.outbox == {}


async def test_a_rebuild_sends_no_webhook_for_what_happened_before_it() -> None:
    h = history(12, rows=4)
    store = MemoryReadModels()
    rebuilt = _projector(store)
    rebuilt.send_notices_from(NOW)
    await rebuilt.project(h.records())
    assert store.outbox == {}
    assert len(store.call_views()) == 4


async def test_the_live_feed_is_numbered_without_gaps() -> None:
    h = history(13, rows=60)
    store = MemoryReadModels()
    projector = _projector(store)
    for chunk in chunks(h.records(), random.Random(2), largest=7):
        await projector.project(chunk)
    batch = store.batches[h.batch_id].view
    entries = [store.feed[k] for k in sorted(store.feed)]
    assert [e.seq for e in entries] == list(range(1, batch.feed_seq + 1))
    kinds = {e.kind for e in entries}
    assert {"call", "progress", "batch.processing"} <= kinds
    assert kinds & {"batch.completed", "batch.failed"}


async def test_status_lists_hold_each_call_once_in_its_current_status() -> None:
    h = history(14, rows=40)
    store = MemoryReadModels()
    projector = _projector(store)
    for chunk in chunks(h.records(), random.Random(3), largest=9):
        await projector.project(chunk)
    lists = store.lists(h.batch_id)
    counts = store.batches[h.batch_id].view.counts
    for status in ("waiting", "active", "completed", "failed", "cancelled"):
        assert sum(lists.live.get(status, [])) == getattr(counts, status)


def _no_batch_ahead_of_its_calls(store: MemoryReadModels) -> None:
    """What any reader could see between two writes: a shown batch never counts more finished calls than
    the call documents hold, and a complete batch has every call document terminal."""
    terminal = {"completed", "failed", "cancelled"}
    for batch_id, stored in store.batches.items():
        calls = [c.view for c in store.calls.values() if c.view.batch_id == batch_id]
        finished = sum(1 for c in calls if c.status.value in terminal)
        counts = stored.view.counts
        assert finished >= counts.terminal, (batch_id, finished, counts)
        if stored.view.is_complete:
            assert len(calls) == counts.seen and finished == len(calls), (batch_id, calls, counts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), order_seed=st.integers(0, 2**32), crash=st.booleans())
async def test_a_reader_never_sees_a_batch_ahead_of_its_calls(
    seed: int, order_seed: int, crash: bool
) -> None:
    order = random.Random(order_seed)
    h = history(seed, rows=8, cancel=order.random() < 0.3)
    expected = await _reference(h)
    store = MemoryReadModels()
    store.after_write = lambda: _no_batch_ahead_of_its_calls(store)
    projector = _projector(store)
    pending = chunks(interleave(h.records(), order), order)
    while pending:
        if crash and order.random() < 0.3:
            store.crash_after = order.randrange(6)
        try:
            await projector.project(pending[0])
        except Crash:
            projector = _projector(store)
            continue
        store.crash_after = None
        pending.pop(0)
    assert {k: _public(v) for k, v in store.batches.items()} == {
        k: _public(v) for k, v in expected.batches.items()
    }
    assert store.batches[h.batch_id].view.is_complete


async def test_a_crash_before_the_shown_write_is_repaired_by_the_next_chunk() -> None:
    h = history(21, rows=6)
    expected = await _reference(h)
    records = h.records()
    store = MemoryReadModels()
    await _projector(store).project(records[:-1])
    writes = len(expected.feed) + len(expected.outbox) + len(expected.calls) + 10
    # The last chunk dies at its very last write: the shown batch document.
    for crash_after in range(writes, -1, -1):
        trial = MemoryReadModels()
        await _projector(trial).project(records[:-1])
        trial.crash_after = crash_after
        try:
            await _projector(trial).project(records[-1:])
        except Crash:
            break
    assert trial.ledger[h.batch_id] != trial.batches[h.batch_id]
    # A new process: the same chunk is delivered again; nothing in it changes the records any more.
    await _projector(trial).project(records[-1:])
    assert _public(trial.batches[h.batch_id]) == _public(expected.batches[h.batch_id])
    assert store.calls.keys() <= trial.calls.keys()


async def test_a_new_process_reads_a_batchs_calls_in_one_pass() -> None:
    h = history(22, rows=40)
    expected = await _reference(h)
    records = h.records()
    store = MemoryReadModels()
    cut = len(records) // 2
    await _projector(store).project(records[:cut])
    # A restarted process (nothing in memory): one pass over the batch's calls, not one read per call.
    restarted = _projector(store)
    for chunk in chunks(records[cut:], random.Random(4), largest=15):
        await restarted.project(chunk)
    assert store.scans == 1 and store.reads <= 1
    assert store.call_views() == expected.call_views()
    assert _public(store.batches[h.batch_id]) == _public(expected.batches[h.batch_id])


async def test_a_batch_larger_than_the_cache_is_read_back_by_row_bucket() -> None:
    # A replay reads each topic at its own pace: here every contact's first events, then the rest, with
    # room in memory for a tenth of the batch. What fell out is read back a row bucket at a time.
    h = history(7, rows=400)
    expected = await _reference(h)
    records = h.records()
    first_seen: dict[str, int] = {}
    for index, record in enumerate(records):
        first_seen.setdefault(getattr(record.message, "contact_id", ""), index)
    replay = sorted(records, key=lambda r: r.position.partition)  # topic by topic, each in its own order
    store = MemoryReadModels()
    projector = _projector(store, cache_size=40)
    for chunk in chunks(replay, random.Random(3), largest=200):
        await projector.project(chunk)
    assert store.call_views() == expected.call_views()
    assert _public(store.batches[h.batch_id]) == _public(expected.batches[h.batch_id])
    assert store.bucket_reads > 0
    assert store.reads + store.bucket_reads < 400  # one read per contact would be a read for each of them


async def test_the_dispatchers_completion_waits_for_the_contacts_own_ends() -> None:
    # The batch's completion arrives before the last contacts' own events (another topic, read at its own
    # pace): the batch is not shown completed, nor announced, until they are projected; then the counts add
    # up.
    h = history(31, rows=20)
    records = h.records()
    late = [r for r in records if r.position.partition.startswith("contacts")][-5:]
    store = MemoryReadModels()
    projector = _projector(store)
    await projector.project([r for r in records if r not in late])  # each topic in its own order
    batch = store.batches[h.batch_id].view
    assert batch.status is not BatchStatus.COMPLETED and not batch.is_complete
    assert not [i for i in store.outbox.values() if i.event == "batch.completed"]
    await projector.project(late)
    batch = store.batches[h.batch_id].view
    assert batch.is_complete and batch.status in (BatchStatus.COMPLETED, BatchStatus.FAILED)
    (announced,) = [
        i for i in store.outbox.values() if i.event == "batch.completed" and i.endpoint_id == "wh_1"
    ]
    data = json.loads(announced.body)["data"]
    assert data["waiting"] == data["active"] == 0
    assert data["completed"] + data["failed"] + data["cancelled"] == 20  # failed includes the skipped
