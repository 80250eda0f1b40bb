"""The dispatcher's invariants against real Kafka and FerretDB, with `python -m dispatcher` processes and a
fake dialer: nothing lost, no double dial, limits hold (also across kill -9), cancel/pause, DNC at dial time,
schedules, leases that expire."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import (
    BatchCancelled,
    BatchCompleted,
    BatchPaused,
    BatchResumed,
    CallRequested,
    CancelBatch,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    Message,
    PauseBatch,
    ResumeBatch,
    RetryPolicySpec,
    RetryScheduled,
)
from shared.outcomes import Outcome
from shared.workspaces import DoNotCallList, WorkspaceDirectory
from tests.integration.dispatcher.conftest import Ingest, workspace
from tests.integration.dispatcher.harness import (
    Collector,
    FakeDialer,
    max_in_window,
    planned_starts,
    random_duration,
)

pytestmark = pytest.mark.integration


def terminal(events: Collector, batch_id: str) -> Counter[str]:
    """How many distinct terminal events each contact got (events re-sent after a crash share an id)."""
    seen: dict[Any, str] = {}
    for kind in (ContactFinished, ContactCancelled, ContactSkipped):
        for m in events.of(kind, batch_id):
            seen[m.event_id] = m.contact_id  # type: ignore[attr-defined]
    return Counter(seen.values())


def requests_of(dialer: FakeDialer, batch_id: str) -> list[CallRequested]:
    return dialer.dials(batch_id)


def assert_nothing_lost_no_double_dial(
    events: Collector, dialer: FakeDialer, batch_id: str, rows: int
) -> None:
    counts = terminal(events, batch_id)
    assert set(counts) == {f"{batch_id}_r{r}" for r in range(1, rows + 1)}, "every contact ends"
    assert max(counts.values()) == 1, "in exactly one terminal state"
    completed = [m for m in events.of(BatchCompleted, batch_id)]
    assert len({m.event_id for m in completed}) == 1
    by_contact: dict[str, set[int]] = {}
    for request in requests_of(dialer, batch_id):
        by_contact.setdefault(request.contact_id, set()).add(request.attempt_number)
    for numbers in by_contact.values():
        assert numbers == set(range(1, max(numbers) + 1)), "attempts are numbered 1..n, each a new id"


async def test_a_batch_runs_to_completion_with_retries(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    dialer.outcome = lambda r: (
        Outcome.BUSY
        if r.attempt_number == 1 and int(r.contact_id.rsplit("_r", 1)[1]) % 5 == 0
        else Outcome.INVALID_NUMBER
        if int(r.contact_id.rsplit("_r", 1)[1]) % 7 == 0
        else Outcome.COMPLETED
    )
    process = dispatchers()
    ws = await workspace(directory, cps=50, concurrent=20)
    await process.wait_owning()
    batch = await ingest.upload(ws, 40, retry=RetryPolicySpec(max_attempts=2, gaps_seconds=(1,)))
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, batch)))
    assert_nothing_lost_no_double_dial(dispatch_events, dialer, batch, 40)
    assert len(dispatch_events.of(RetryScheduled, batch)) == 8  # rows 5, 10, ..., 40
    counts = dispatch_events.of(BatchCompleted, batch)[0].counts  # type: ignore[attr-defined]
    assert (counts.completed, counts.failed, counts.total) == (35, 5, 40)
    assert len(dialer.claimed & {r.attempt_id for r in requests_of(dialer, batch)}) == 48


async def test_contacts_that_arrive_before_their_batch_are_kept(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    process = dispatchers()
    ws = await workspace(directory, cps=50, concurrent=10)
    await process.wait_owning()
    batch = await ingest.upload(ws, 15, contacts_first=True)
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, batch)))
    assert_nothing_lost_no_double_dial(dispatch_events, dialer, batch, 15)


async def test_limits_hold_and_two_workspaces_do_not_wait_for_each_other(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    dialer.duration = random_duration(0.3, 1.2)
    process = dispatchers()
    slow = await workspace(directory, cps=5, concurrent=3)
    other = await workspace(directory, cps=20, concurrent=10)
    await process.wait_owning()
    big = await ingest.upload(slow, 40)
    small = await ingest.upload(other, 10)
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, small)))
    assert len(requests_of(dialer, big)) < 40, "the small workspace finished while the slow one still waits"
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, big)))
    # The dispatcher's promise: no one-second window of planned starts holds more than the plan.
    assert max_in_window(planned_starts(requests_of(dialer, big))) <= 5
    assert dialer.max_active[slow] <= 3
    assert_nothing_lost_no_double_dial(dispatch_events, dialer, big, 40)


async def test_pause_holds_resume_releases_cancel_stops(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    process = dispatchers()
    ws = await workspace(directory, cps=4, concurrent=4)
    await process.wait_owning()
    batch = await ingest.upload(ws, 60)
    env = {"workspace_id": ws, "correlation_id": batch, "batch_id": batch}
    await dispatch_events.wait_for(lambda: len(requests_of(dialer, batch)) >= 3)
    await ingest.publisher.publish(PauseBatch(occurred_at=datetime.now(UTC), **env))
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchPaused, batch)))
    paused_at = dispatch_events.of(BatchPaused, batch)[0].occurred_at
    await ingest.publisher.publish(ResumeBatch(occurred_at=datetime.now(UTC), **env))
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchResumed, batch)))
    resumed_at = dispatch_events.of(BatchResumed, batch)[0].occurred_at
    assert not [r for r in requests_of(dialer, batch) if paused_at < r.occurred_at < resumed_at]
    await dispatch_events.wait_for(
        lambda: any(r.occurred_at > resumed_at for r in requests_of(dialer, batch))
    )
    cancel_sent = datetime.now(UTC)
    await ingest.publisher.publish(CancelBatch(occurred_at=cancel_sent, requested_at=cancel_sent, **env))
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCancelled, batch)))
    cancelled_at = dispatch_events.of(BatchCancelled, batch)[0].occurred_at
    assert not [r for r in requests_of(dialer, batch) if r.occurred_at > cancelled_at]
    await dispatch_events.wait_for(lambda: len(terminal(dispatch_events, batch)) == 60)
    counts = terminal(dispatch_events, batch)
    assert max(counts.values()) == 1
    assert len(dispatch_events.of(ContactCancelled, batch)) == 60 - len(requests_of(dialer, batch))
    last = max(r.occurred_at for r in requests_of(dialer, batch))
    print(f"cancel_to_last_dial_ms={(last - cancel_sent).total_seconds() * 1000:.0f}")


async def test_do_not_call_is_checked_at_dial_time_and_schedules_hold(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
    mongo: Any,
    infra: Any,
) -> None:
    process = dispatchers()
    ws = await workspace(directory, cps=20, concurrent=5)
    await process.wait_owning()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    batch = await ingest.upload(ws, 3, scheduled_at=at)
    await DoNotCallList(mongo[infra.mongo_db]).add(ws, "+12125550002", "test")  # after the upload
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, batch)))
    skipped = dispatch_events.of(ContactSkipped, batch)
    assert [s.contact_id for s in skipped] == [f"{batch}_r2"]  # type: ignore[attr-defined]
    assert all(r.occurred_at >= at for r in requests_of(dialer, batch))
    assert {r.contact_id for r in requests_of(dialer, batch)} == {f"{batch}_r1", f"{batch}_r3"}


async def test_a_call_without_an_end_event_frees_its_slot_and_retries(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    dialer.answer = False  # the first attempt never reports back
    process = dispatchers()
    ws = await workspace(directory, cps=5, concurrent=1)
    await process.wait_owning()
    from shared.events import AgentSnapshot

    short = AgentSnapshot(agent_id="agent_s", name="S", prompt_template="x", variables=(), max_call_seconds=1)
    batch_id = await _upload_with_agent(ingest, ws, short)
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(RetryScheduled, batch_id)))
    retry = dispatch_events.of(RetryScheduled, batch_id)[0]
    assert retry.after_outcome is Outcome.SYSTEM_ERROR  # type: ignore[attr-defined]
    dialer.answer = True
    await dispatch_events.wait_for(lambda: bool(dispatch_events.of(BatchCompleted, batch_id)), within=180)
    assert [r.attempt_id for r in requests_of(dialer, batch_id)] == [f"{batch_id}_r1_a1", f"{batch_id}_r1_a2"]


async def _upload_with_agent(ingest: Ingest, ws: str, agent: Any) -> str:
    from uuid import uuid4

    from shared.events import BatchAccepted, BatchIngested, ContactAccepted
    from tests.integration.dispatcher.conftest import ALWAYS

    batch = f"batch_{uuid4().hex[:12]}"
    now = datetime.now(UTC)
    env = {"occurred_at": now, "workspace_id": ws, "correlation_id": batch}
    messages: list[Message] = [
        BatchAccepted(
            **env, batch_id=batch, total_rows=1, agent=agent, created_at=now, calling_window=ALWAYS
        ),
        ContactAccepted(
            **env,
            batch_id=batch,
            contact_id=f"{batch}_r1",
            row_number=1,
            phone_number="+12125550001",
            variables={},
        ),
        BatchIngested(**env, batch_id=batch, total_rows=1, accepted=1, skipped=0),
    ]
    for m in messages:
        await ingest.publisher.publish(m)
    return batch


async def test_kill_9_mid_batch_and_rebalance_lose_nothing_and_keep_limits(
    ingest: Ingest,
    dispatch_events: Collector,
    dialer: FakeDialer,
    dispatchers: Any,
    directory: WorkspaceDirectory,
) -> None:
    dialer.duration = random_duration(0.2, 0.6)
    dialer.outcome = lambda r: (
        Outcome.BUSY
        if r.attempt_number == 1 and int(r.contact_id.rsplit("_r", 1)[1]) % 4 == 0
        else Outcome.COMPLETED
    )
    first, second = dispatchers(), dispatchers()
    await first.wait_owning()
    await second.wait_owning()
    limits = {}
    batches = {}
    for _ in range(3):
        ws = await workspace(directory, cps=15, concurrent=8)
        limits[ws] = (15, 8)
        batches[ws] = await ingest.upload(ws, 150, retry=RetryPolicySpec(max_attempts=2, gaps_seconds=(1,)))
    await dispatch_events.wait_for(lambda: len(dialer.requests) >= 120)
    victim = first if (await first.ownership())["workspaces"] else second
    victim.kill()
    third = dispatchers()
    for batch in batches.values():
        await dispatch_events.wait_for(
            lambda b=batch: bool(dispatch_events.of(BatchCompleted, b)), within=300
        )
    for ws, batch in batches.items():
        assert_nothing_lost_no_double_dial(dispatch_events, dialer, batch, 150)
        cps, concurrent = limits[ws]
        assert max_in_window(planned_starts(requests_of(dialer, batch))) <= cps
        assert dialer.max_active[ws] <= concurrent
    assert third.proc.poll() is None
    await asyncio.sleep(0)
