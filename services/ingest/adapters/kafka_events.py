"""Publishing to Kafka: contract messages one by one, contact events in bulk.

Its own producer rather than `shared.kafka.EventPublisher`'s: an upload sends ~100 MB of contact events to a
single partition (they are keyed by workspace id), so bigger batches matter, and contact bodies arrive
pre-encoded (`contact_wire`). Topic names, keys and headers follow `shared.topics` and `shared.telemetry`
exactly as the shared publisher does; `enable_idempotence` keeps `acks=all`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from ingest.adapters.contact_wire import encode_contacts
from ingest.domain.batch import BatchRecord
from ingest.ports import ContactRow
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
        self._producer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka_bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=batch_bytes,
            max_request_size=batch_bytes + 64 * 1024,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

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

    async def publish_contacts(self, batch: BatchRecord, rows: Sequence[ContactRow], now: datetime) -> None:
        bodies = encode_contacts(batch.workspace_id, batch.batch_id, rows, now)
        await self.publish_encoded(Topic.CONTACTS, batch.workspace_id.encode(), bodies)

    async def publish_encoded(self, topic: Topic, key: bytes, bodies: Sequence[bytes]) -> None:
        """Send pre-encoded bodies under one key; returns once all are acknowledged."""
        name = self.topic_name(topic)
        headers = self._headers()
        send = self._producer.send
        pending = [await send(name, body, key=key, headers=headers) for body in bodies]
        if pending:
            await asyncio.gather(*pending)
