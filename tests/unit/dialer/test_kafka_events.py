"""The call-events publisher renews its idempotent producer when the broker breaks its sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

import dialer.adapters.kafka_events as kafka_events
from shared.events import CallRequested, encode
from shared.settings import InfraSettings
from shared.topics import key_for, topic_for

from .fakes import request

pytestmark = pytest.mark.unit


class FakeBatch:
    """A record batch that holds `capacity` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []

    def append(self, *, timestamp: int | None, key: bytes, value: bytes, headers: Any) -> object | None:
        if len(self.values) >= self.capacity:
            return None
        self.values.append(value)
        return object()


class FakeProducer:
    """The first producer fails every send as a broker does after a restart; later ones accept."""

    made: list[FakeProducer] = []
    batch_capacity = 100

    def __init__(self, **options: Any) -> None:
        self.broken = not FakeProducer.made
        self.sent: list[bytes] = []
        self.batches: list[tuple[int, list[bytes]]] = []
        self.stopped = False
        FakeProducer.made.append(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def flush(self) -> None:
        return None

    def create_batch(self) -> FakeBatch:
        return FakeBatch(FakeProducer.batch_capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.broken:
            ack.set_exception(OutOfOrderSequenceNumber())
        else:
            self.sent.extend(batch.values)
            self.batches.append((partition, batch.values))
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


async def test_a_burst_goes_out_in_few_batches_in_emission_order_per_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeProducer.made = [FakeProducer()]  # a healthy producer is the next one made
    FakeProducer.batch_capacity = 3
    monkeypatch.setattr(kafka_events, "AIOKafkaProducer", FakeProducer)
    events = kafka_events.KafkaCallEvents(InfraSettings(), "dialer-test")
    await events.start()
    burst = [request(row) for row in range(1, 11)]
    try:
        for event in burst[:-1]:
            events.emit(event)
        await asyncio.wait_for(events.emit_confirmed(burst[-1]), timeout=5)
    finally:
        await events.stop()
        FakeProducer.batch_capacity = 100
    producer = FakeProducer.made[-1]
    by_partition: dict[int, list[bytes]] = {}
    for event in burst:
        partition = events._partition(topic_for(event), key_for(event))
        by_partition.setdefault(partition, []).append(encode(event))
    # At most three records a batch, and no more batches than the partitions' events need.
    assert len(producer.batches) == sum(-(-len(v) // 3) for v in by_partition.values()) < len(burst)
    for partition, wanted in by_partition.items():
        assert [v for p, values in producer.batches if p == partition for v in values] == wanted


async def test_a_refused_batch_fails_only_its_own_events(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProducer.made = [FakeProducer()]
    monkeypatch.setattr(kafka_events, "AIOKafkaProducer", FakeProducer)
    events = kafka_events.KafkaCallEvents(InfraSettings(), "dialer-test")
    await events.start()
    producer = FakeProducer.made[-1]
    real = producer.send_batch
    first_request, second_request = _on_two_partitions(events)
    refused = events._partition(topic_for(first_request), key_for(first_request))

    async def refuse_one(batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        if partition == refused:
            raise KafkaTimeoutError()
        return await real(batch, topic, partition=partition)

    monkeypatch.setattr(producer, "send_batch", refuse_one)
    try:
        first = events.emit_confirmed(first_request)
        second = events.emit_confirmed(second_request)
        with pytest.raises(KafkaTimeoutError):
            await asyncio.wait_for(first, timeout=5)
        await asyncio.wait_for(second, timeout=5)
    finally:
        await events.stop()


def _on_two_partitions(events: kafka_events.KafkaCallEvents) -> tuple[CallRequested, CallRequested]:
    first = request(1)
    partition = events._partition(topic_for(first), key_for(first))
    for row in range(2, 100):
        other = request(row)
        if events._partition(topic_for(other), key_for(other)) != partition:
            return first, other
    raise AssertionError("no two requests on different partitions")
