"""The claim rule against real Kafka and FerretDB: each attempt id is dialed at most once."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest
from pymongo import AsyncMongoClient

from dialer.adapters.mongo_attempts import OUTCOMES, MongoAttemptStore
from dialer.adapters.simulated_provider import SimulatedProvider
from dialer.bootstrap import utc_now
from dialer.domain.simulation import CallSimulator
from dialer.handlers import Dialer
from dialer.ports import NoMetrics
from shared.events import CallAnswered, CallEnded, CallRinging, CallStarted, Message
from shared.kafka import EventPublisher
from shared.mongo import Document, make_client
from shared.outcomes import Outcome
from shared.settings import InfraSettings

from .conftest import CallEvents, DialerProcess, call_request, dialer_settings, new_batch, running_dialer

pytestmark = pytest.mark.integration

TEST_NUMBER_OUTCOMES = {
    "+12025550100": Outcome.COMPLETED,
    "+12025550101": Outcome.VOICEMAIL,
    "+12025550102": Outcome.NO_ANSWER,
    "+12025550103": Outcome.BUSY,
    "+12025550104": Outcome.UNREACHABLE,
    "+12025550105": Outcome.INVALID_NUMBER,
    "+12025550106": Outcome.CARRIER_BLOCKED,
    "+12025550107": Outcome.OPTED_OUT,
    "+12025550108": Outcome.SYSTEM_ERROR,
}


async def test_requests_are_dialed_and_reported(
    infra: InfraSettings,
    publisher: EventPublisher,
    call_events: CallEvents,
    mongo: AsyncMongoClient[Document],
) -> None:
    batch = new_batch()
    numbers = list(itertools.islice(itertools.cycle(TEST_NUMBER_OUTCOMES), 45))
    requests = [call_request(batch, row, phone=phone) for row, phone in enumerate(numbers, start=1)]
    async with running_dialer(dialer_settings(infra)):
        await publisher.publish_many(requests)
        ended = await call_events.ended([r.attempt_id for r in requests])
    for r in requests:
        assert ended[r.attempt_id].outcome is TEST_NUMBER_OUTCOMES[r.phone_number]
        kinds = [type(e) for e in call_events.of(r.attempt_id)]
        assert kinds[0] is CallStarted and kinds[-1] is CallEnded
        if ended[r.attempt_id].billable:
            assert kinds == [CallStarted, CallRinging, CallAnswered, CallEnded]
        stored = await mongo[infra.mongo_db][OUTCOMES].find_one({"_id": r.attempt_id})
        assert (
            stored is not None and CallEnded.model_validate_json(stored["ended_event"]) == ended[r.attempt_id]
        )


async def test_the_same_request_delivered_twice_is_dialed_once(
    infra: InfraSettings, publisher: EventPublisher, call_events: CallEvents
) -> None:
    request = call_request(new_batch(), 1)
    async with running_dialer(dialer_settings(infra)) as runtime:
        await publisher.publish(request)
        await call_events.ended([request.attempt_id])
        await publisher.publish(request)  # a redelivery after the end: the stored end is re-emitted
        await call_events.wait_for(lambda: len(call_events.of(request.attempt_id, CallEnded)) == 2)
        assert runtime.dialer.active_calls == 0
    first, again = call_events.of(request.attempt_id, CallEnded)
    assert first.event_id == again.event_id and first == again
    assert len(call_events.of(request.attempt_id, CallStarted)) == 1


async def test_two_dialers_racing_on_the_same_requests_dial_each_once(infra: InfraSettings) -> None:
    """Two dialers with their own database connections claim the same 20 attempts at the same moment."""
    batch = new_batch()
    requests = [call_request(batch, row) for row in range(1, 21)]
    clients = [make_client(infra, f"race-{i}") for i in range(2)]
    placed: list[list[str]] = [[], []]

    class Events:
        def __init__(self, sink: list[str]) -> None:
            self.sink = sink

        def emit(self, event: Message) -> None:
            if isinstance(event, CallStarted):
                self.sink.append(event.attempt_id)

        def emit_confirmed(self, event: Message) -> asyncio.Future[None]:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    dialers = [
        Dialer(
            store=MongoAttemptStore(client[infra.mongo_db], instance=f"race-{i}"),
            events=Events(placed[i]),
            provider=SimulatedProvider(CallSimulator(1), time_scale=0, clock=utc_now),
            metrics=NoMetrics(),
            clock=utc_now,
            new_token=lambda: uuid.uuid4().hex,
        )
        for i, client in enumerate(clients)
    ]
    try:
        # In batches and one by one, interleaved, so both the bulk and the single-insert paths race.
        results = await asyncio.gather(
            dialers[0].handle(requests),
            *(dialers[1].handle([r]) for r in reversed(requests)),
        )
        await asyncio.gather(*(aw for handled in results for aw in handled))
    finally:
        for client in clients:
            await client.close()
    dialed = placed[0] + placed[1]
    assert sorted(dialed) == sorted(r.attempt_id for r in requests)  # every attempt once, none twice


async def test_a_dialer_killed_mid_call_is_not_redialed_and_the_retry_is(
    infra: InfraSettings,
    publisher: EventPublisher,
    call_events: CallEvents,
    dialer_processes: type[DialerProcess],
) -> None:
    batch = new_batch()
    first = call_request(batch, 1, attempt=1, phone="+12025550109", max_call_seconds=3600)
    doomed = dialer_processes(DIALER_SIM_TIME_SCALE="1")
    await doomed.start()
    await publisher.publish(first)
    await call_events.wait_for(lambda: bool(call_events.of(first.attempt_id, CallAnswered)))
    doomed.kill()  # between claim and outcome: the offset was never committed

    survivor = dialer_processes(DIALER_SIM_TIME_SCALE="1")
    await survivor.start()

    async def redelivered_and_held() -> None:
        # Another process's counter can only be polled.
        while await survivor.metric("batchcalls_dialer_claims_total", 'result="held"') < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    async with asyncio.timeout(90):
        await redelivered_and_held()
    # The dispatcher's lease expiry retries the contact as attempt 2, which is dialed.
    retry = call_request(batch, 1, attempt=2, phone="+12025550109", max_call_seconds=1)
    await publisher.publish(retry)
    ended = await call_events.ended([retry.attempt_id])
    assert ended[retry.attempt_id].outcome is Outcome.COMPLETED
    assert len(call_events.of(first.attempt_id, CallStarted)) == 1
    assert call_events.of(first.attempt_id, CallEnded) == []
    assert survivor.terminate() in (0, -15), survivor.output()  # uvicorn re-raises SIGTERM after shutdown
    assert "dialer stopped" in survivor.output()


async def test_sigterm_drains_then_cuts_calls_as_unbilled_system_errors(
    infra: InfraSettings,
    publisher: EventPublisher,
    call_events: CallEvents,
    dialer_processes: type[DialerProcess],
) -> None:
    batch = new_batch()
    short = call_request(batch, 1, phone="+12025550109", max_call_seconds=1)
    long = call_request(batch, 2, phone="+12025550109", max_call_seconds=3600)
    dialer = dialer_processes(DIALER_SIM_TIME_SCALE="1", DIALER_DRAIN_SECONDS="3")
    await dialer.start()
    await publisher.publish_many([short, long])
    await call_events.wait_for(
        lambda: bool(
            call_events.of(short.attempt_id, CallAnswered) and call_events.of(long.attempt_id, CallAnswered)
        )
    )
    assert dialer.terminate() in (0, -15), dialer.output()
    assert "dialer stopped" in dialer.output()
    ended = await call_events.ended([short.attempt_id, long.attempt_id])
    assert ended[short.attempt_id].outcome is Outcome.COMPLETED and ended[short.attempt_id].billable
    cut = ended[long.attempt_id]
    assert cut.outcome is Outcome.SYSTEM_ERROR and not cut.billable
    assert cut.answered_at is None and cut.duration_seconds == 0
