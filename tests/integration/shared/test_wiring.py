"""The shared infrastructure against the real parts: Kafka 4.4 and FerretDB, as the stack runs them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from shared.events import ContactAccepted, PauseBatch, decode
from shared.kafka import EventPublisher, ensure_topics
from shared.mongo import Document, database, make_client, ping
from shared.settings import InfraSettings
from shared.topics import Topic
from shared.workspaces import DoNotCallList, Plan, WorkspaceDirectory

pytestmark = pytest.mark.integration


@pytest.fixture
def infra() -> InfraSettings:
    tag = uuid4().hex[:8]
    return InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_shared_{tag}")


@pytest.fixture
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = make_client(infra, "test-shared")
    yield client
    await client.drop_database(infra.mongo_db)
    await client.close()


async def test_published_messages_arrive_decoded_in_key_order(infra: InfraSettings) -> None:
    await ensure_topics(infra)
    await ensure_topics(infra)  # idempotent
    publisher = EventPublisher(infra, "test-publisher")
    await publisher.start()
    now = datetime.now(UTC)
    sent = [
        ContactAccepted(
            occurred_at=now,
            workspace_id="ws_a",
            correlation_id="batch_x",
            batch_id="batch_x",
            contact_id=f"batch_x_r{i}",
            row_number=i,
            phone_number="+14155550123",
            variables={"n": str(i)},
        )
        for i in range(1, 51)
    ]
    try:
        assert await publisher.publish_many(sent) == 50
        await publisher.publish(
            PauseBatch(occurred_at=now, workspace_id="ws_a", correlation_id="b", batch_id="b")
        )
    finally:
        await publisher.stop()

    consumer = AIOKafkaConsumer(
        Topic.CONTACTS.name_with(infra.topic_prefix),
        bootstrap_servers=infra.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"g{uuid4().hex[:6]}",
    )
    await consumer.start()
    received: list[ContactAccepted] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < 50:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        assert record.key == b"ws_a"
                        message = decode(record.value)
                        assert isinstance(message, ContactAccepted)
                        received.append(message)
    finally:
        await consumer.stop()
    assert received == sent, "one key, one partition: order is kept and nothing is lost"


async def test_workspace_keys_and_plans_in_ferretdb(
    infra: InfraSettings, mongo: AsyncMongoClient[Document]
) -> None:
    await ping(mongo)
    directory = WorkspaceDirectory(database(mongo, infra), cache_seconds=0)
    await directory.create_workspace("ws_a", "Acme", Plan(calls_per_second=5), default_region="US")
    await directory.create_workspace("ws_b", "Other", Plan())
    key = await directory.issue_key("ws_a")

    assert await directory.key_owner(key.secret_key) == "ws_a"
    assert await directory.key_owner(key.secret_key + "x") is None
    assert await directory.key_owner(f"bck_{uuid4().hex[:16]}_nope") is None
    stored = await database(mongo, infra)["api_keys"].find_one({"_id": key.key_id})
    assert stored is not None and key.secret_key.split("_", 2)[2] not in str(stored), (
        "only the hash is stored"
    )

    await directory.set_plan("ws_a", Plan(calls_per_second=20))
    workspace = await directory.workspace("ws_a")
    assert (
        workspace is not None and workspace.plan.calls_per_second == 20 and workspace.default_region == "US"
    )

    await directory.revoke_key(key.key_id)
    assert await directory.key_owner(key.secret_key) is None


async def test_do_not_call_list_is_per_workspace(
    infra: InfraSettings, mongo: AsyncMongoClient[Document]
) -> None:
    dnc = DoNotCallList(database(mongo, infra))
    assert await dnc.add("ws_a", "+14155550123", source="api")
    assert not await dnc.add("ws_a", "+14155550123", source="api"), "a second add is a no-op"
    assert await dnc.contains("ws_a", "+14155550123")
    assert not await dnc.contains("ws_b", "+14155550123")
    assert await dnc.numbers("ws_a") == {"+14155550123"}
    assert await dnc.remove("ws_a", "+14155550123")
    assert not await dnc.contains("ws_a", "+14155550123")


async def test_store_command_metrics_count_commands_and_documents_per_collection(
    infra: InfraSettings,
) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"batchcalls_mongo_{name}", labels) or 0.0

    metered = infra.model_copy(update={"mongo_command_metrics": True})
    client = make_client(metered, "test-metrics")
    family = f"metered_{uuid4().hex[:6]}"
    collection = database(client, metered)[f"{family}__batch_x__0"]  # a per-batch name counts as its family
    before = value("documents_total", collection=family, command="insert")
    try:
        await collection.insert_many([{"_id": i} for i in range(3)])
        assert [d async for d in collection.find({})] == [{"_id": 0}, {"_id": 1}, {"_id": 2}]
    finally:
        await client.drop_database(metered.mongo_db)
        await client.close()
    assert value("documents_total", collection=family, command="insert") == before + 3
    assert value("documents_total", collection=family, command="find") == 3
    assert value("commands_total", collection=family, command="insert", result="ok") == 1
    assert value("command_seconds_total", collection=family, command="find") > 0
