"""Publishing call events to Kafka without awaiting each one.

`emit` and `emit_confirmed` are synchronous: they queue the event (the latter returns a future for the
broker's acknowledgement). One sender task takes everything queued at once, appends it in emission order
to one record batch per partition and hands each batch to the producer whole (`send_batch`): a call's
events reach their partition (keyed by workspace) in the order they happened, and a burst of thousands of
calls costs a few batches rather than a producer call, a future and a callback per event. The idempotent
producer appends to a partition in order, so the acknowledgement of a call's last event covers the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber
from aiokafka.partitioner import murmur2
from opentelemetry import trace

from shared.events import Message, encode
from shared.settings import InfraSettings
from shared.telemetry import inject_headers
from shared.topics import Topic, key_for, topic_for

log = logging.getLogger(__name__)

_Queued = tuple[Message, list[tuple[str, bytes]], "asyncio.Future[None] | None"]


class KafkaCallEvents:
    """`CallEventSink` over an idempotent aiokafka producer."""

    def __init__(self, infra: InfraSettings, client_id: str, *, linger_ms: int = 5) -> None:
        self._prefix = infra.topic_prefix
        self._options: dict[str, Any] = {
            "bootstrap_servers": infra.kafka_bootstrap,
            "client_id": client_id,
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "max_batch_size": 512 * 1024,
            "request_timeout_ms": 30_000,
        }
        self._producer = AIOKafkaProducer(**self._options)
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._partitions: dict[tuple[Topic, bytes], int] = {}
        self._broken = False
        self._retired: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._producer.start()
        self._sender = asyncio.create_task(self._send_loop(), name="call-events sender")

    async def stop(self) -> None:
        """Send what is queued, wait for its acknowledgements, then close the producer."""
        await self._queue.join()
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._producer.flush()
        await self._producer.stop()

    def emit(self, event: Message) -> None:
        self._queue.put_nowait((event, _headers(), None))

    def emit_confirmed(self, event: Message) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, _headers(), done))
        return done

    def _partition(self, topic: Topic, key: bytes) -> int:
        # The default partitioner (murmur2 of the key, as the Java client) in pure Python costs more than
        # the rest of a send; a workspace's partition never changes, so it is computed once per key.
        cached = self._partitions.get((topic, key))
        if cached is None:
            if len(self._partitions) > 100_000:
                self._partitions.clear()
            cached = (murmur2(key) & 0x7FFFFFFF) % topic.partitions
            self._partitions[(topic, key)] = cached
        return cached

    async def _renew(self) -> None:
        """A new producer (a new producer id) after the old one's sequence broke: after a broker restart
        the idempotent producer can answer every send with OutOfOrderSequenceNumber for good, which left a
        dialer unable to report any call end (the dispatcher then only freed its slots by lease expiry)."""
        log.warning("renewing the call-events producer after a fatal sequence error")
        old = self._producer
        while True:
            fresh = AIOKafkaProducer(**self._options)
            try:
                await fresh.start()
                break
            except Exception:
                log.exception("starting a new call-events producer failed; retrying")
                with contextlib.suppress(Exception):
                    await fresh.stop()
                await asyncio.sleep(1.0)
        self._producer, self._broken = fresh, False
        # Closing the old one waits for what it still holds; that must not hold up the new sends.
        task = asyncio.create_task(_close_quietly(old))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _acked(self, ack: asyncio.Future[Any], items: list[_Queued]) -> None:
        if not ack.cancelled() and isinstance(ack.exception(), _SEQUENCE_BROKEN):
            # Sent again on a new producer: the send loop renews it before the next send.
            self._broken = True
            for item in items:
                self._queue.put_nowait(item)
            return
        failed = False
        for _, _, done in items:
            if done is not None:
                _settle(ack, done)
            else:
                failed = True
        if failed:
            _log_failure(ack)

    async def _send_loop(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < MAX_ITEMS_PER_SEND and not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                if self._broken:
                    await self._renew()
                await self._send(items)
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _send(self, items: list[_Queued]) -> None:
        """Append `items` in order to one batch per partition (a new one when full) and submit each."""
        open_batches: dict[tuple[str, int], tuple[Any, list[_Queued]]] = {}
        full: list[tuple[str, int, Any, list[_Queued]]] = []
        for item in items:
            event, headers, done = item
            try:
                topic, key = topic_for(event), key_for(event)
                target = (topic.name_with(self._prefix), self._partition(topic, key))
                value = encode(event)
            except Exception as exc:  # an event that cannot be encoded fails alone
                _refused(event, done, exc)
                continue
            batch = open_batches.get(target)
            if batch is None:
                batch = open_batches[target] = (self._producer.create_batch(), [])
            if batch[0].append(timestamp=None, key=key, value=value, headers=headers) is None:
                full.append((*target, *batch))
                batch = open_batches[target] = (self._producer.create_batch(), [])
                if batch[0].append(timestamp=None, key=key, value=value, headers=headers) is None:
                    _refused(event, done, ValueError("a call event larger than a record batch"))
                    continue
            batch[1].append(item)
        # Full batches were started first, so each partition's batches are submitted in emission order.
        for topic_name, partition, builder, batched in [
            *full,
            *((t, p, b, i) for (t, p), (b, i) in open_batches.items()),
        ]:
            if not batched:
                continue
            try:
                ack = await self._producer.send_batch(builder, topic_name, partition=partition)
            except Exception as exc:  # the producer refused the batch outright
                for event, _, done in batched:
                    _refused(event, done, exc)
                continue
            ack.add_done_callback(lambda a, batched=batched: self._acked(a, batched))


MAX_ITEMS_PER_SEND = 10_000
"""Most queued events one pass of the send loop takes: bounds how long it holds the event loop."""


def _refused(event: Message, done: asyncio.Future[None] | None, exc: Exception) -> None:
    log.error(
        "could not queue a call event", exc_info=exc, extra={"type": type(event).model_fields["type"].default}
    )
    if done is not None and not done.done():
        done.set_exception(exc)


_SEQUENCE_BROKEN = (OutOfOrderSequenceNumber, InvalidProducerEpoch)
"""Answers after which this producer's sends keep failing: only a new producer id gets through."""


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()


_HEADERS: dict[tuple[int, int, int], list[tuple[str, bytes]]] = {}
"""Kafka headers by span context: a call's four events are emitted in its one span, so the carrier is
built once per call, not per event."""


def _headers() -> list[tuple[str, bytes]]:
    context = trace.get_current_span().get_span_context()
    key = (context.trace_id, context.span_id, context.trace_flags)
    made = _HEADERS.get(key)
    if made is None:
        if len(_HEADERS) >= 10_000:
            _HEADERS.clear()
        made = _HEADERS[key] = [(k, v.encode()) for k, v in inject_headers().items()]
    return made


def _log_failure(ack: asyncio.Future[Any]) -> None:
    if not ack.cancelled() and ack.exception() is not None:
        log.error("a call event was not acknowledged", exc_info=ack.exception())


def _settle(ack: asyncio.Future[Any], done: asyncio.Future[None]) -> None:
    if done.done():
        return
    if ack.cancelled():
        done.set_exception(asyncio.CancelledError())
    elif ack.exception() is not None:
        done.set_exception(ack.exception())  # type: ignore[arg-type]
    else:
        done.set_result(None)
