"""The dispatcher's Kafka subscriber: polls `batches`, `contacts` and `call-events`, applies each poll to the
owned state, and commits the offsets only after that state is written (at-least-once in, idempotent apply).

aiokafka is used directly rather than through faststream (ADR 0021): the dispatcher must pick the range
assignor, run code on partition assignment and revocation (load state, stop the loops, hand over), and
commit exactly what it applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from dispatcher.handlers import Dispatcher
from dispatcher.metrics import OWNED_PARTITIONS
from shared.events import ContactSkipped, Message, decode
from shared.liveness import Heartbeat
from shared.telemetry import traceparent_of

log = logging.getLogger(__name__)

_TYPE = b'"type":"'
_IGNORED = (b"call.ringing", b"call.answered", b"contact.skipped")
"""Progress events and upload skips do not change the queue: skipped before decoding (half of call-events).
A call's start is read: it closes the request's place in the in-flight window."""


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: DispatcherConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._consumer.revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._consumer.assigned({tp.partition for tp in assigned})


class DispatcherConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        dispatcher: Dispatcher,
        *,
        max_records: int,
        stall_seconds: float = 300.0,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._dispatcher = dispatcher
        self._max_records = max_records
        self._applying = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.assigned_once = asyncio.Event()
        self.heartbeat = Heartbeat("dispatcher consumer", stall_seconds=stall_seconds)
        """Fails /healthz when the poll loop died (an error nothing handles) or stopped going round."""

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_Handover(self))
        self._task = asyncio.create_task(self._loop(), name="dispatcher-consumer")
        self.heartbeat.watch(self._task)

    async def stop(self) -> None:
        self.heartbeat.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._applying:
            await self._dispatcher.stop()
            if not self._dispatcher.poisoned:
                with contextlib.suppress(KafkaError):
                    await self._consumer.commit()
        await self._consumer.stop()

    async def revoked(self, partitions: set[int]) -> None:
        # Waits for the poll being applied: its offsets are committed here, and its partitions' loops stop
        # before the new owner is assigned them.
        async with self._applying:
            await self._dispatcher.release(partitions)
            if not self._dispatcher.poisoned:
                with contextlib.suppress(CommitFailedError, KafkaError):
                    await self._consumer.commit()
        OWNED_PARTITIONS.set(len(self._dispatcher.partitions))

    async def assigned(self, partitions: set[int]) -> None:
        async with self._applying:
            await self._dispatcher.take_over(partitions)
        OWNED_PARTITIONS.set(len(self._dispatcher.partitions))
        self.assigned_once.set()

    async def _loop(self) -> None:
        while True:
            self.heartbeat.beat()
            polled = await self._consumer.getmany(timeout_ms=200, max_records=self._max_records)
            if not polled:
                continue
            async with self._applying:
                items: list[tuple[int, Message]] = []
                traces: dict[UUID, str] = {}
                texts: dict[bytes, str] = {}  # an upload's contacts share one traceparent string
                for tp, records in polled.items():
                    for record in records:
                        message = self._decode(record.value)
                        if message is not None:
                            items.append((tp.partition, message))
                            trace = traceparent_of(record.headers, texts)
                            if trace:
                                traces[message.event_id] = trace
                await self._dispatcher.apply(items, traces)
                try:
                    await self._consumer.commit(
                        {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
                    )
                except (CommitFailedError, KafkaError) as exc:
                    # A rebalance took the partitions: the new owner replays these (applying is idempotent).
                    log.warning("commit failed", extra={"error": str(exc)})

    @staticmethod
    def _decode(value: bytes | None) -> Message | None:
        if not value:
            return None
        # The envelope fields come first and none is named `type`, so the first match is the discriminator.
        at = value.find(_TYPE)
        if at >= 0 and value[at + len(_TYPE) :].startswith(_IGNORED):
            return None
        try:
            message = decode(value)
        except ValidationError:
            log.error("undecodable message skipped", extra={"body": value[:200].decode(errors="replace")})
            return None
        return None if isinstance(message, ContactSkipped) else message
