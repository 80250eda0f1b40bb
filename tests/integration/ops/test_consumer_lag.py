"""The consumer-lag gauge against the real broker: uncommitted messages count, committed ones do not."""

from __future__ import annotations

from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from shared.consumer_lag import ConsumerLagMonitor
from shared.kafka import ensure_topics
from shared.settings import InfraSettings
from shared.topics import Topic

pytestmark = pytest.mark.integration


async def test_lag_counts_what_the_group_has_not_committed() -> None:
    infra = InfraSettings(topic_prefix=f"t{uuid4().hex[:8]}.")
    group = f"lag-probe-{uuid4().hex[:6]}"
    await ensure_topics(infra, [Topic.CALL_REQUESTS])
    name = Topic.CALL_REQUESTS.name_with(infra.topic_prefix)
    monitor = ConsumerLagMonitor(infra, group, [Topic.CALL_REQUESTS])
    assert (
        REGISTRY.get_sample_value("batchcalls_kafka_consumer_lag", {"group": group, "topic": "call-requests"})
        == 0
    )

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(30):
            await producer.send(name, f"m{i}".encode(), partition=i % 3)
        await producer.flush()
    finally:
        await producer.stop()

    # Nothing committed yet: every message is lag.
    assert await monitor.measure_once() == {Topic.CALL_REQUESTS: 30}

    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    p0, p1 = TopicPartition(name, 0), TopicPartition(name, 1)
    consumer.assign([p0, p1])
    try:
        # Each partition holds 10 messages: commit half of partition 0 and all of partition 1.
        await consumer.commit({p0: OffsetAndMetadata(5, ""), p1: OffsetAndMetadata(10, "")})
    finally:
        await consumer.stop()
    assert await monitor.measure_once() == {Topic.CALL_REQUESTS: 30 - 5 - 10}
    sample = REGISTRY.get_sample_value(
        "batchcalls_kafka_consumer_lag", {"group": group, "topic": "call-requests"}
    )
    assert sample == 15
    await monitor.close()
