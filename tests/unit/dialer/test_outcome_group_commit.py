"""Outcomes are group-committed: calls that end within a few milliseconds share one `insert_many`, and
each call's end event is published only once its own group's write succeeded."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, cast

import pytest

from dialer.adapters.mongo_attempts import COLLECTION, OUTCOMES, MongoAttemptStore
from dialer.handlers import Dialer, DialPolicy
from dialer.ports import NoMetrics
from shared.events import CallEnded

from .fakes import FakeClock, FakeEvents, ScriptedProvider, request

pytestmark = pytest.mark.unit

_tokens = itertools.count()


class FakeCollection:
    """`insert_many` that stores documents, or waits for `hold` and then raises `fail`, per write."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.hold: list[asyncio.Event | None] = []
        self.fail: Exception | None = None
        self.written = asyncio.Event()
        """Set once a write has started."""

    async def insert_many(self, docs: Sequence[dict[str, Any]], ordered: bool = True) -> None:
        self.writes.append([str(doc["_id"]) for doc in docs])
        self.written.set()
        gate = self.hold.pop(0) if self.hold else None
        if gate is not None:
            await gate.wait()
        if self.fail is not None:
            raise self.fail


def make(outcomes: FakeCollection) -> tuple[Dialer, FakeEvents]:
    db = {COLLECTION: FakeCollection(), OUTCOMES: outcomes}
    store = MongoAttemptStore(cast(Any, db), instance="dialer-test", flush_seconds=0.005)
    events = FakeEvents()
    dialer = Dialer(
        store=store,
        events=events,
        provider=ScriptedProvider(),
        metrics=NoMetrics(),
        clock=FakeClock(),
        new_token=lambda: f"t{next(_tokens)}",
        # One try: the group's failure reaches the callers at once instead of after back-off retries.
        policy=DialPolicy(outcome_write_attempts=1),
    )
    return dialer, events


def ended_ids(events: FakeEvents) -> set[str]:
    return {e.attempt_id for e in events.of(CallEnded)}


async def test_calls_ending_together_share_one_outcome_write() -> None:
    outcomes = FakeCollection()
    dialer, events = make(outcomes)
    group = [request(row) for row in range(1, 6)]
    await asyncio.gather(*await dialer.handle(group))
    assert outcomes.writes == [[r.attempt_id for r in group]]
    assert ended_ids(events) == {r.attempt_id for r in group}


async def test_a_failed_group_write_publishes_none_of_its_end_events() -> None:
    outcomes = FakeCollection()
    outcomes.fail = ConnectionError("store down")
    dialer, events = make(outcomes)
    group = [request(row) for row in range(1, 4)]
    results = await asyncio.gather(*await dialer.handle(group), return_exceptions=True)
    assert len(outcomes.writes) == 1 and len(outcomes.writes[0]) == 3, "one write for the group"
    assert all(isinstance(r, ConnectionError) for r in results)
    assert ended_ids(events) == set()


async def test_a_slow_group_write_holds_only_its_own_group() -> None:
    outcomes = FakeCollection()
    slow = asyncio.Event()
    outcomes.hold = [slow]
    dialer, events = make(outcomes)
    first = [request(row) for row in range(1, 4)]
    second = [request(row) for row in range(4, 6)]
    held = [asyncio.ensure_future(a) for a in await dialer.handle(first)]
    await asyncio.wait_for(outcomes.written.wait(), timeout=5)  # the first group's write is now held
    await asyncio.wait_for(asyncio.gather(*await dialer.handle(second)), timeout=5)
    assert ended_ids(events) == {r.attempt_id for r in second}
    assert not any(f.done() for f in held)
    slow.set()
    await asyncio.wait_for(asyncio.gather(*held), timeout=5)
    assert ended_ids(events) == {r.attempt_id for r in first + second}
    assert outcomes.writes == [[r.attempt_id for r in first], [r.attempt_id for r in second]]
