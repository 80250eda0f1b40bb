"""Publishing call events to Kafka without awaiting each one.

`emit` is synchronous: it queues the event and returns a future for the broker's acknowledgement. One
sender task hands queued events to the producer in emission order, so a call's events reach their
partition (keyed by workspace) in the order they happened, and a burst of thousands of calls shares the
producer's batches instead of paying a round trip each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.events import Message, encode
from shared.settings import InfraSettings
from shared.telemetry import inject_headers
from shared.topics import key_for, topic_for

log = logging.getLogger(__name__)


class KafkaCallEvents:
    """`CallEventSink` over an idempotent aiokafka producer."""

    def __init__(self, infra: InfraSettings, client_id: str, *, linger_ms: int = 5) -> None:
        self._prefix = infra.topic_prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka_bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=512 * 1024,
            request_timeout_ms=30_000,
        )
        self._queue: asyncio.Queue[tuple[Message, list[tuple[str, bytes]], asyncio.Future[None]]] = (
            asyncio.Queue()
        )
        self._sender: asyncio.Task[None] | None = None

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

    def emit(self, event: Message) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        headers = [(k, v.encode()) for k, v in inject_headers().items()]
        self._queue.put_nowait((event, headers, done))
        return done

    async def _send_loop(self) -> None:
        while True:
            event, headers, done = await self._queue.get()
            try:
                ack = await self._producer.send(
                    topic_for(event).name_with(self._prefix),
                    encode(event),
                    key=key_for(event),
                    headers=headers,
                )
                ack.add_done_callback(lambda a, d=done: _settle(a, d))
            except Exception as exc:  # the producer refused the message outright
                log.exception(
                    "could not queue a call event", extra={"type": event.model_fields["type"].default}
                )
                if not done.done():
                    done.set_exception(exc)
            finally:
                self._queue.task_done()


def _settle(ack: asyncio.Future[Any], done: asyncio.Future[None]) -> None:
    if done.done():
        return
    if ack.cancelled():
        done.set_exception(asyncio.CancelledError())
    elif ack.exception() is not None:
        done.set_exception(ack.exception())  # type: ignore[arg-type]
    else:
        done.set_result(None)
