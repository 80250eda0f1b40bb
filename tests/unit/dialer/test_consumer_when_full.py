"""A full dialer waits for room without polling, so the records its fetcher holds are not thrown away
(a poll with a partition paused drops that partition's fetched records); it still polls, paused, once per
`full_poll_seconds` to stay in its group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import pytest
from aiokafka import TopicPartition

from dialer.entrypoints.consumer import CallRequestConsumer
from shared.events import CallRequested, encode
from shared.telemetry import KafkaHeaders

from .fakes import request

pytestmark = pytest.mark.unit

TP = TopicPartition("call-requests", 0)


class Record:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = TP.topic, TP.partition, offset
        self.value = encode(request(offset + 1))
        self.headers: list[tuple[str, bytes]] = []


class FakeKafkaConsumer:
    """Hands out `available` records; counts paused polls."""

    def __init__(self, available: int) -> None:
        self.available = [Record(offset) for offset in range(available)]
        self.paused_polls = 0
        self.polls = 0
        self._paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Record]]:
        await asyncio.sleep(0)
        self.polls += 1
        if self._paused:
            self.paused_polls += 1
            return {}
        taken, self.available = self.available[:max_records], self.available[max_records:]
        return {TP: taken} if taken else {}


class HoldingDialer:
    """Claims every request and keeps each call going until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.claimed = asyncio.Event()
        self.handled: list[str] = []

    async def handle(
        self, requests: Sequence[CallRequested], headers: Sequence[KafkaHeaders] | None = None
    ) -> list[Awaitable[None]]:
        self.handled.extend(r.attempt_id for r in requests)
        self.claimed.set()
        return [self._call() for _ in requests]

    async def _call(self) -> None:
        await self.release.wait()


def make(kafka: FakeKafkaConsumer, dialer: HoldingDialer, full_poll_seconds: float) -> CallRequestConsumer:
    return CallRequestConsumer(
        cast(Any, kafka),
        TP.topic,
        cast(Any, dialer),
        max_active=2,
        poll_max_records=2,
        commit_interval_seconds=3600,
        full_poll_seconds=full_poll_seconds,
    )


async def fill(consumer: CallRequestConsumer, dialer: HoldingDialer) -> None:
    """One poll takes both free places; its claim runs in a task of its own."""
    await consumer._poll_once()
    await asyncio.wait_for(dialer.claimed.wait(), timeout=5)
    await asyncio.sleep(0)  # the claim task hands the calls on


async def test_a_full_dialer_waits_for_room_without_polling() -> None:
    kafka, dialer = FakeKafkaConsumer(available=5), HoldingDialer()
    consumer = make(kafka, dialer, full_poll_seconds=3600)
    await fill(consumer, dialer)
    polls = kafka.polls
    for _ in range(3):
        await consumer._poll_once()
    assert kafka.polls == polls and kafka.paused_polls == 0, "full: no poll that would drop fetched records"
    dialer.release.set()
    async with asyncio.timeout(5):
        while len(dialer.handled) < 4:
            await consumer._poll_once()
            await asyncio.sleep(0)
    assert dialer.handled[2:] == [f"batch_abc_r{row}_a1" for row in (3, 4)], "room again: polls resume"


async def test_a_dialer_full_for_long_still_polls_paused_to_stay_in_its_group() -> None:
    kafka, dialer = FakeKafkaConsumer(available=5), HoldingDialer()
    consumer = make(kafka, dialer, full_poll_seconds=0)
    await fill(consumer, dialer)
    await consumer._poll_once()
    assert kafka.paused_polls == 1 and len(dialer.handled) == 2
    dialer.release.set()
