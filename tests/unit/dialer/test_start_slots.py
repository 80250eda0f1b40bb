"""The dialer honours a request's start slot: it waits for it in the call's own task, starts within the
tolerance, and does not dial a request that came too late (docs/adr/0024)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import pytest

from dialer.handlers import Dialer
from dialer.ports import NoMetrics
from shared.events import SLOT_MISSED, START_TOLERANCE_SECONDS, CallEnded, CallRequested, CallStarted
from shared.outcomes import Outcome

from .fakes import T0, FakeEvents, FakeStore, ScriptedProvider, request

pytestmark = pytest.mark.unit

_tokens = itertools.count()


class ManualClock:
    """Wall time that moves only when the test says so; `sleep` returns once the time has come (or, with
    `early`, a little before it, as a coarse timer may)."""

    def __init__(self, early: float = 0.0) -> None:
        self.now = T0
        self.early = early
        self.sleeps: list[float] = []
        self._waiting: list[tuple[datetime, asyncio.Future[None]]] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        due = self.now + timedelta(seconds=max(0.0, seconds - self.early))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((due, future))
        await future

    async def advance(self, seconds: float) -> None:
        for _ in range(5):  # let the call tasks reach their wait first
            await asyncio.sleep(0)
        self.now += timedelta(seconds=seconds)
        for due, future in list(self._waiting):
            if due <= self.now and not future.done():
                future.set_result(None)
        self._waiting = [(d, f) for d, f in self._waiting if not f.done()]
        for _ in range(5):
            await asyncio.sleep(0)


def make(clock: ManualClock) -> tuple[Dialer, FakeStore, FakeEvents, ScriptedProvider]:
    store, events, provider = FakeStore(), FakeEvents(), ScriptedProvider()
    dialer = Dialer(
        store=store,
        events=events,
        provider=provider,
        metrics=NoMetrics(),
        clock=clock,
        new_token=lambda: f"t{next(_tokens)}",
        sleep=clock.sleep,
    )
    return dialer, store, events, provider


def at(req: CallRequested, not_before: datetime) -> CallRequested:
    return req.model_copy(update={"not_before": not_before})


async def test_a_request_waits_for_its_slot_without_holding_up_others() -> None:
    clock = ManualClock()
    dialer, _, events, provider = make(clock)
    slot = T0 + timedelta(seconds=0.8)
    later, now = at(request(1), slot), request(2)  # the second carries no slot: it starts at once
    done = await dialer.handle([later, now])
    await done[1]
    assert [c.attempt_id for c in provider.calls] == ["batch_abc_r2_a1"]
    assert dialer.active_calls == 1  # the waiting one holds its place (and its lease) meanwhile
    await clock.advance(0.5)
    assert len(provider.calls) == 1
    await clock.advance(0.3)
    await done[0]
    started = {e.attempt_id: e.occurred_at for e in events.of(CallStarted)}
    assert started["batch_abc_r1_a1"] == slot
    ended = {e.attempt_id: e for e in events.of(CallEnded)}
    assert ended["batch_abc_r1_a1"].started_at == slot


async def test_a_timer_that_fires_early_is_waited_again() -> None:
    clock = ManualClock(early=0.3)
    dialer, _, events, provider = make(clock)
    slot = T0 + timedelta(seconds=1)
    done = await dialer.handle([at(request(), slot)])
    await clock.advance(0.7)  # the coarse timer fires here, 0.3 s early
    assert provider.calls == []
    await clock.advance(0.3)
    await done[0]
    assert clock.sleeps == pytest.approx([1.0, 0.3])
    assert events.of(CallStarted)[0].occurred_at >= slot


async def test_a_start_within_the_tolerance_is_dialed() -> None:
    clock = ManualClock()
    dialer, _, events, provider = make(clock)
    slot = T0 - timedelta(seconds=START_TOLERANCE_SECONDS / 2)
    await asyncio.gather(*await dialer.handle([at(request(), slot)]))
    assert len(provider.calls) == 1
    assert clock.sleeps == []  # already due: no wait
    assert events.of(CallEnded)[0].outcome is Outcome.BUSY


async def test_a_request_too_late_for_its_slot_is_not_dialed_but_reported() -> None:
    clock = ManualClock()
    dialer, store, events, provider = make(clock)
    late = at(request(), T0 - timedelta(seconds=START_TOLERANCE_SECONDS + 0.01))
    await asyncio.gather(*await dialer.handle([late]))
    assert provider.calls == []
    assert events.of(CallStarted) == []
    (ended,) = events.of(CallEnded)
    assert (ended.outcome, ended.provider_code, ended.billable) == (Outcome.SYSTEM_ERROR, SLOT_MISSED, False)
    assert ended.duration_seconds == 0 and ended.answered_at is None
    assert store.docs[late.attempt_id]["ended"] == ended  # stored before published, like any outcome
    # Redelivered: the stored end is re-emitted; the attempt is still never dialed.
    await asyncio.gather(*await dialer.handle([late]))
    assert provider.calls == []
    assert events.of(CallEnded) == [ended, ended]


async def test_a_slot_with_an_end_is_dialed_until_then_and_not_after() -> None:
    # A workspace far below its plan gets slots that stay open longer (start_by): a backlogged dialer
    # still dials a request within it, and misses one past it.
    clock = ManualClock()
    dialer, _, events, provider = make(clock)
    open_slot = request(1).model_copy(
        update={"not_before": T0 - timedelta(seconds=1.5), "start_by": T0 + timedelta(seconds=0.5)}
    )
    await asyncio.gather(*await dialer.handle([open_slot]))
    assert len(provider.calls) == 1
    closed = request(2).model_copy(
        update={"not_before": T0 - timedelta(seconds=1.5), "start_by": T0 - timedelta(seconds=0.1)}
    )
    await asyncio.gather(*await dialer.handle([closed]))
    assert len(provider.calls) == 1
    assert [e.provider_code for e in events.of(CallEnded)][-1] == SLOT_MISSED
