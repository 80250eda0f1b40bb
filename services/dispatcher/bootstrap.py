"""The composition root: the one place that picks and wires the dispatcher's concrete adapters."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from pymongo import AsyncMongoClient

from dispatcher.adapters.mongo_store import MongoDispatchStore
from dispatcher.adapters.workspace_plans import DirectoryPlanLimits, SharedDoNotCall
from dispatcher.config import Settings
from dispatcher.entrypoints.consumer import DispatcherConsumer
from dispatcher.handlers import Dispatcher
from shared.kafka import CONSUMER_METADATA_MAX_AGE_MS, EventPublisher
from shared.mongo import Document, database, make_client
from shared.runner import instance_name
from shared.topics import Topic
from shared.workspaces import DoNotCallList, WorkspaceDirectory

SERVICE = "dispatcher"
CONSUMED = (Topic.BATCHES, Topic.CONTACTS, Topic.CALL_EVENTS)


class UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def terminate_process(_: BaseException) -> None:
    """The default reaction to an unexpected error: SIGTERM to this process (the shutdown saves nothing)."""
    # The state in memory may be ahead of the store: stop (without saving it) and let the restart reload.
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class DispatcherRuntime:
    settings: Settings
    name: str
    mongo: AsyncMongoClient[Document]
    publisher: EventPublisher
    dispatcher: Dispatcher
    consumer: DispatcherConsumer
    kafka_consumer: AIOKafkaConsumer


def build_runtime(
    settings: Settings, *, on_fatal: Callable[[BaseException], None] = terminate_process
) -> DispatcherRuntime:
    infra = settings.infra
    name = instance_name(SERVICE, settings)
    mongo = make_client(infra, name)
    shared_db = database(mongo, infra)
    store = MongoDispatchStore(mongo[settings.state_database()])
    publisher = EventPublisher(infra, name)
    dispatcher = Dispatcher(
        store,
        publisher,
        DirectoryPlanLimits(WorkspaceDirectory(shared_db, cache_seconds=settings.plan_cache_seconds)),
        SharedDoNotCall(DoNotCallList(shared_db)),
        UtcClock(),
        on_fatal=on_fatal,
        max_round=settings.max_round,
        in_flight_seconds=settings.in_flight_seconds,
        lease_grace=timedelta(seconds=settings.lease_grace_seconds),
    )
    kafka_consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=settings.consumer_group,
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Range, not aiokafka's round-robin default: partition n of every consumed topic goes to the same
        # member, which makes it the single writer of those workspaces (ADR 0020).
        partition_assignment_strategy=(RangePartitionAssignor,),
        max_poll_records=settings.poll_max_records,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
    )
    consumer = DispatcherConsumer(
        kafka_consumer,
        [t.name_with(infra.topic_prefix) for t in CONSUMED],
        dispatcher,
        max_records=settings.poll_max_records,
    )
    return DispatcherRuntime(settings, name, mongo, publisher, dispatcher, consumer, kafka_consumer)
