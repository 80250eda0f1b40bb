"""Kafka factories: the faststream broker for subscribers and an event publisher that batches acks.

Publishing goes through aiokafka's producer directly so that a burst (250,000 contact events from one
upload) is sent without awaiting each acknowledgement; `publish_many` returns once every message is
acknowledged by the broker. The producer is idempotent (which forces `acks=all`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from shared.events import Message, encode
from shared.settings import InfraSettings
from shared.telemetry import inject_headers
from shared.topics import Topic, key_for, topic_for

CONSUMER_METADATA_MAX_AGE_MS = 10_000
"""How often a consumer refreshes its view of the cluster (aiokafka's default is five minutes). A consumer
that subscribed while a topic's creation had not reached the broker's metadata yet sees no partitions of
it, joins its group with an empty assignment and stays idle until the next refresh: one stale view cost a
stack five idle minutes after a restart. Ten seconds bounds that, for a metadata request per consumer."""


def make_broker(infra: InfraSettings, client_id: str, **options: Any) -> KafkaBroker:
    """A faststream broker for a service's subscribers (the composition root passes the middlewares)."""
    return KafkaBroker(infra.kafka_bootstrap, client_id=client_id, **options)


class EventPublisher:
    """Publishes contract messages to their home topic, keyed as `shared.topics` says."""

    def __init__(self, infra: InfraSettings, client_id: str, *, linger_ms: int = 5) -> None:
        self._prefix = infra.topic_prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka_bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    def topic_name(self, topic: Topic) -> str:
        return topic.name_with(self._prefix)

    async def publish(self, message: Message, *, topic: Topic | None = None) -> None:
        await self.publish_many([message], topic=topic)

    async def publish_many(
        self,
        messages: Iterable[Message],
        *,
        topic: Topic | None = None,
        carriers: Mapping[UUID, Mapping[str, str]] | None = None,
    ) -> int:
        """Send every message, then wait for all acknowledgements; raises if any send failed.

        Each message's headers carry the current trace context, or the W3C carrier `carriers` holds for its
        event id: one publish may send work of several traces (call requests of contacts from different
        uploads, each dialed long after its contact arrived).
        """
        headers = _headers(inject_headers())
        pending: list[asyncio.Future[Any]] = []
        for message in messages:
            name = self.topic_name(topic or topic_for(message))
            own = carriers.get(message.event_id) if carriers else None
            pending.append(
                await self._producer.send(
                    name,
                    encode(message),
                    key=key_for(message),
                    headers=headers if own is None else _headers(own),
                )
            )
        if pending:
            await asyncio.gather(*pending)
        return len(pending)


def _headers(carrier: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in carrier.items()]


async def ensure_topics(infra: InfraSettings, topics: Sequence[Topic] = tuple(Topic)) -> None:
    """Create the topics with their partition counts if they do not exist (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                t.name_with(infra.topic_prefix),
                num_partitions=t.partitions,
                replication_factor=infra.topic_replication,
            )
            for t in topics
            if t.name_with(infra.topic_prefix) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        # Created is not yet visible: a consumer subscribing now could see no partitions of a new topic.
        wanted = [t.name_with(infra.topic_prefix) for t in topics]
        deadline = asyncio.get_running_loop().time() + TOPIC_VISIBLE_SECONDS
        while not _all_visible(await admin.describe_topics(wanted), wanted):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"topics not visible in the cluster's metadata: {sorted(wanted)}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topics(infra: InfraSettings, topics: Sequence[Topic] = tuple(Topic)) -> None:
    """Delete the deployment's topics (a test's or a benchmark run's, under its own prefix): a broker that
    keeps every past run's partitions restarts more slowly."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([t.name_with(infra.topic_prefix) for t in topics])
    finally:
        await admin.close()


TOPIC_VISIBLE_SECONDS = 30.0
"""How long `ensure_topics` waits for created topics to show all their partitions, with leaders."""


def _all_visible(described: Sequence[Mapping[str, Any]], wanted: Iterable[str]) -> bool:
    """Every wanted topic is known, with partitions that all have a leader. (Not the configured count: a
    topic an operator created with other partition counts is theirs to keep.)"""
    led = {
        d["topic"]
        for d in described
        if d.get("error_code", 0) == 0
        and d.get("partitions")
        and all(p.get("leader", -1) >= 0 for p in d["partitions"])
    }
    return all(name in led for name in wanted)
