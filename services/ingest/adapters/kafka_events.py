"""Publishing to Kafka: contract messages one by one, contact events in bulk.

Its own producer rather than `shared.kafka.EventPublisher`'s: an upload sends ~100 MB of contact events to a
single partition (they are keyed by workspace id), so bigger batches matter, and contact bodies arrive
pre-encoded (`contact_wire`). Topic names, keys and headers follow `shared.topics` and `shared.telemetry`
exactly as the shared publisher does; `enable_idempotence` keeps `acks=all`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from ingest.adapters.contact_wire import encode_contacts
from ingest.domain.batch import BatchRecord
from ingest.ports import JudgedRow
from shared.events import Message, encode
from shared.settings import InfraSettings
from shared.telemetry import inject_headers
from shared.topics import Topic, key_for, topic_for


class KafkaEventSink:
    """`EventSink` over one idempotent aiokafka producer."""

    def __init__(
        self, infra: InfraSettings, client_id: str, *, linger_ms: int = 5, batch_bytes: int = 1 << 20
    ):
        self._prefix = infra.topic_prefix
        self._options: dict[str, Any] = {
            "bootstrap_servers": infra.kafka_bootstrap,
            "client_id": client_id,
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "max_batch_size": batch_bytes,
            "max_request_size": batch_bytes + 64 * 1024,
            "request_timeout_ms": 30_000,
        }
        self._started: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("the Kafka producer is not started")
        return self._started

    async def start(self) -> None:
        # aiokafka binds the producer to the running loop, so it is built here, not in __init__.
        producer = AIOKafkaProducer(**self._options)
        await producer.start()
        self._started = producer

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    async def ping(self) -> None:
        """Raises unless the broker answers a metadata request (readiness)."""
        await self._producer.client.fetch_all_metadata()

    def topic_name(self, topic: Topic) -> str:
        return topic.name_with(self._prefix)

    @staticmethod
    def _headers() -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in inject_headers().items()]

    async def publish(self, messages: Sequence[Message]) -> None:
        headers = self._headers()
        pending: list[asyncio.Future[Any]] = []
        for message in messages:
            pending.append(
                await self._producer.send(
                    self.topic_name(topic_for(message)),
                    encode(message),
                    key=key_for(message),
                    headers=headers,
                )
            )
        if pending:
            await asyncio.gather(*pending)

    async def send_contacts(
        self, batch: BatchRecord, rows: Sequence[JudgedRow], now: datetime
    ) -> Awaitable[None]:
        bodies = encode_contacts(batch.workspace_id, batch.batch_id, rows, now)
        return await self.send_encoded(Topic.CONTACTS, batch.workspace_id.encode(), bodies)

    async def send_encoded(self, topic: Topic, key: bytes, bodies: Sequence[bytes]) -> Awaitable[None]:
        """Hand pre-encoded bodies under one key to the producer; returns their acknowledgement.

        Uses aiokafka's batch API (about 2 µs a message instead of 18 µs through `send`). The partition is
        the one `send` would pick for `key` (the default murmur2 partitioner, as Kafka's Java client), so
        these land beside every other message of the workspace."""
        if not bodies:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        producer = self._producer
        name = self.topic_name(topic)
        partitions = sorted(await producer.partitions_for(name))
        partition = self._partitioner(key, partitions, partitions)
        headers = self._headers()
        pending: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for body in bodies:
            if batch.append(key=key, value=body, timestamp=None, headers=headers) is None:
                batch.close()
                pending.append(await producer.send_batch(batch, name, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=body, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a {len(body)}-byte message does not fit in a Kafka batch")
        batch.close()
        pending.append(await producer.send_batch(batch, name, partition=partition))
        acknowledged: asyncio.Future[Any] = asyncio.gather(*pending)
        return acknowledged
