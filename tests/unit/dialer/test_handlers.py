from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from dialer.adapters.simulated_provider import SimulatedProvider
from dialer.domain.call import CallResult
from dialer.domain.simulation import CallSimulator
from dialer.handlers import Dialer, DialPolicy
from dialer.ports import NoMetrics
from shared.events import CallAnswered, CallEnded, CallRinging, CallStarted
from shared.outcomes import Outcome

from .fakes import FakeClock, FakeEvents, FakeStore, ScriptedProvider, request

pytestmark = pytest.mark.unit

_tokens = itertools.count()


def make_dialer(
    provider: ScriptedProvider | SimulatedProvider,
    store: FakeStore | None = None,
    events: FakeEvents | None = None,
) -> tuple[Dialer, FakeStore, FakeEvents]:
    store = store or FakeStore()
    events = events or FakeEvents()
    dialer = Dialer(
        store=store,
        events=events,
        provider=provider,
        metrics=NoMetrics(),
        clock=FakeClock(),
        new_token=lambda: f"t{next(_tokens)}",
        policy=DialPolicy(ring_timeout_seconds=20.0),
    )
    return dialer, store, events


async def settle(awaitables: list) -> None:  # type: ignore[type-arg]
    await asyncio.gather(*awaitables)


async def test_a_claimed_request_is_dialed_and_reported_in_order() -> None:
    answered = CallResult(
        Outcome.COMPLETED,
        answered_at=datetime(2026, 3, 2, 15, 0, 5, tzinfo=UTC),
        talk_seconds=42.0,
        provider_code="200",
    )
    provider = ScriptedProvider(result=answered, ring=True, answer=True)
    dialer, store, events = make_dialer(provider)
    await settle(await dialer.handle([request()]))
    kinds = [type(e) for e in events.sent]
    assert kinds == [CallStarted, CallRinging, CallAnswered, CallEnded]
    ended = events.of(CallEnded)[0]
    assert (ended.outcome, ended.billable, ended.duration_seconds) == (Outcome.COMPLETED, True, 42.0)
    assert ended.provider == "scripted" and ended.provider_code == "200"
    assert store.docs["batch_abc_r1_a1"]["ended"] == ended


async def test_the_rendered_prompt_and_limits_go_to_the_provider() -> None:
    provider = ScriptedProvider()
    dialer, _, _ = make_dialer(provider)
    await settle(await dialer.handle([request(max_call_seconds=90)]))
    placed = provider.calls[0]
    assert placed.prompt == "Hi Ada, about your appointment."
    assert placed.variables == {"first_name": "Ada"}
    assert (placed.max_call_seconds, placed.ring_timeout_seconds) == (90.0, 20.0)


async def test_a_redelivered_finished_request_re_emits_its_end_and_is_not_dialed() -> None:
    provider = ScriptedProvider()
    dialer, _, events = make_dialer(provider)
    await settle(await dialer.handle([request()]))
    await settle(await dialer.handle([request()]))
    assert len(provider.calls) == 1
    first, again = events.of(CallEnded)
    assert first == again  # the same event id: the status projection applies it once
    assert len(events.of(CallStarted)) == 1


async def test_a_request_claimed_but_unfinished_is_left_alone() -> None:
    provider = ScriptedProvider(hold=0.05)
    dialer, _, events = make_dialer(provider)
    first = await dialer.handle([request()])
    second = await dialer.handle([request()])  # e.g. a rebalance redelivered it mid-call
    await settle(second)
    assert len(provider.calls) == 1 and events.of(CallEnded) == []
    await settle(first)
    assert len(events.of(CallEnded)) == 1


async def test_a_dialer_that_died_mid_call_blocks_a_redial_of_the_same_attempt() -> None:
    store = FakeStore()
    store.docs["batch_abc_r1_a1"] = {"token": "dead-dialer", "ended": None}
    provider = ScriptedProvider()
    dialer, _, events = make_dialer(provider, store)
    await settle(await dialer.handle([request(attempt=1)]))
    assert provider.calls == [] and events.sent == []
    # The dispatcher's lease expiry retries it as a new attempt, which is dialed.
    await settle(await dialer.handle([request(attempt=2)]))
    assert [c.attempt_id for c in provider.calls] == ["batch_abc_r1_a2"]


async def test_duplicates_inside_one_poll_are_dialed_once() -> None:
    provider = ScriptedProvider()
    dialer, _, events = make_dialer(provider)
    handled = await dialer.handle([request(), request(row=2), request()])
    await settle(handled)
    assert len(handled) == 3
    assert sorted(c.attempt_id for c in provider.calls) == ["batch_abc_r1_a1", "batch_abc_r2_a1"]
    assert len(events.of(CallEnded)) == 2


async def test_two_dialers_racing_on_one_request_dial_it_once() -> None:
    store = FakeStore()
    provider_a, provider_b = ScriptedProvider(hold=0.01), ScriptedProvider(hold=0.01)
    a, _, events_a = make_dialer(provider_a, store)
    b, _, events_b = make_dialer(provider_b, store)
    handled = await asyncio.gather(a.handle([request()]), b.handle([request()]))
    await settle([*handled[0], *handled[1]])
    assert len(provider_a.calls) + len(provider_b.calls) == 1
    assert len(events_a.of(CallEnded)) + len(events_b.of(CallEnded)) == 1


async def test_a_store_outage_raises_before_anything_is_dialed() -> None:
    store = FakeStore()
    store.fail_claims = True
    provider = ScriptedProvider()
    dialer, _, events = make_dialer(provider, store)
    with pytest.raises(ConnectionError):
        await dialer.handle([request()])
    assert provider.calls == [] and events.sent == []


async def test_a_provider_failure_is_a_system_error_not_billed() -> None:
    provider = ScriptedProvider(fail=RuntimeError("trunk down"))
    dialer, _, events = make_dialer(provider)
    await settle(await dialer.handle([request()]))
    ended = events.of(CallEnded)[0]
    assert ended.outcome is Outcome.SYSTEM_ERROR and not ended.billable
    assert "trunk down" in (ended.provider_reason or "")


async def test_billable_needs_a_connected_call() -> None:
    # An outcome that would be billable, reported without an answer, is not charged.
    provider = ScriptedProvider(result=CallResult(Outcome.VOICEMAIL))
    dialer, _, events = make_dialer(provider)
    await settle(await dialer.handle([request()]))
    ended = events.of(CallEnded)[0]
    assert not ended.billable and ended.duration_seconds == 0


async def test_drain_lets_short_calls_finish_and_cuts_the_rest_as_system_errors() -> None:
    short = ScriptedProvider(hold=0.01, result=CallResult(Outcome.BUSY))
    long = ScriptedProvider(hold=60.0, answer=True)
    store = FakeStore()
    d_short, _, ev_short = make_dialer(short, store)
    d_long, _, ev_long = make_dialer(long, store)
    handled_short = await d_short.handle([request(row=1)])
    handled_long = await d_long.handle([request(row=2)])
    assert await d_short.drain(5.0) == 0
    assert await d_long.drain(0.05) == 1
    await settle([*handled_short, *handled_long])
    assert ev_short.of(CallEnded)[0].outcome is Outcome.BUSY
    cut = ev_long.of(CallEnded)[0]
    assert cut.outcome is Outcome.SYSTEM_ERROR and not cut.billable
    assert long.hung_up == ["batch_abc_r2_a1"]  # the provider was told to end the call
    assert d_long.active_calls == 0


async def test_the_maximum_call_duration_hangs_up_as_completed() -> None:
    clock = FakeClock()
    provider = SimulatedProvider(CallSimulator(1), time_scale=0.01, clock=clock)
    dialer, _, events = make_dialer(provider)
    await settle(await dialer.handle([request(phone="+12025550109", max_call_seconds=3)]))
    ended = events.of(CallEnded)[0]
    assert ended.outcome is Outcome.COMPLETED and ended.billable
    assert ended.duration_seconds == 3.0


@pytest.mark.parametrize(
    ("number", "outcome", "billable"),
    [
        ("+12025550100", Outcome.COMPLETED, True),
        ("+12025550101", Outcome.VOICEMAIL, True),
        ("+12025550102", Outcome.NO_ANSWER, False),
        ("+12025550103", Outcome.BUSY, False),
        ("+12025550104", Outcome.UNREACHABLE, False),
        ("+12025550105", Outcome.INVALID_NUMBER, False),
        ("+12025550106", Outcome.CARRIER_BLOCKED, False),
        ("+12025550107", Outcome.OPTED_OUT, True),
        ("+12025550108", Outcome.SYSTEM_ERROR, False),
    ],
)
async def test_simulated_test_numbers_end_to_end(number: str, outcome: Outcome, billable: bool) -> None:
    provider = SimulatedProvider(CallSimulator(5), time_scale=0, clock=FakeClock())
    dialer, _, events = make_dialer(provider)
    await settle(await dialer.handle([request(phone=number)]))
    ended = events.of(CallEnded)[0]
    assert (ended.outcome, ended.billable) == (outcome, billable)
    assert (len(events.of(CallAnswered)) == 1) == billable


async def test_a_start_delay_dials_at_the_admission_time_plus_the_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dialer.handlers as handlers

    waits: list[float] = []

    async def record(seconds: float) -> None:
        if seconds > 0:  # not the event loop yields of the fakes
            waits.append(seconds)

    monkeypatch.setattr(handlers.asyncio, "sleep", record)
    provider = ScriptedProvider()
    dialer = Dialer(
        store=FakeStore(),
        events=FakeEvents(),
        provider=provider,
        metrics=NoMetrics(),
        clock=FakeClock(),
        new_token=lambda: f"t{next(_tokens)}",
        policy=DialPolicy(ring_timeout_seconds=20.0, start_delay_seconds=1.0),
    )
    # Admitted at T0, arriving 1 ms later: dialed 1 s after admission, whatever the delivery took.
    await settle(await dialer.handle([request()]))
    assert len(waits) == 1 and 0.99 < waits[0] < 1.0
    assert len(provider.calls) == 1
    # Arriving later than the delay: dialed at once.
    late = request(row=2)
    late = late.model_copy(update={"occurred_at": late.occurred_at - timedelta(seconds=5)})
    await settle(await dialer.handle([late]))
    assert len(waits) == 1 and len(provider.calls) == 2
