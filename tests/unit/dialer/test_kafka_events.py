"""The call-events publisher renews its idempotent producer when the broker breaks its sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

import dialer.adapters.kafka_events as kafka_events
from shared.settings import InfraSettings

from .fakes import request

pytestmark = pytest.mark.unit


class FakeProducer:
    """The first producer fails every send as a broker does after a restart; later ones accept."""

    made: list[FakeProducer] = []

    def __init__(self, **options: Any) -> None:
        self.broken = not FakeProducer.made
        self.sent: list[bytes] = []
        self.stopped = False
        FakeProducer.made.append(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def flush(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.broken:
            ack.set_exception(OutOfOrderSequenceNumber())
        else:
            self.sent.append(value)
            ack.set_result(None)
        return ack


async def test_a_broken_sequence_renews_the_producer_and_the_event_still_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeProducer.made = []
    monkeypatch.setattr(kafka_events, "AIOKafkaProducer", FakeProducer)
    events = kafka_events.KafkaCallEvents(InfraSettings(), "dialer-test")
    await events.start()
    try:
        await asyncio.wait_for(events.emit_confirmed(request()), timeout=5)
    finally:
        await events.stop()
    first, second = FakeProducer.made
    assert first.stopped and not first.sent
    assert len(second.sent) == 1
