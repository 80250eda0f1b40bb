"""The composition root: the one place that builds concrete adapters and wires them to the use cases."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.api_auth import RequestLimiter
from shared.mongo import Document, database, make_client
from shared.runner import instance_name
from shared.workspaces import WorkspaceDirectory
from status.adapters.kafka_source import KafkaEventSource
from status.adapters.mongo_read_models import MongoReadModels
from status.adapters.mongo_webhooks import MongoWebhooks
from status.config import Settings
from status.entrypoints.projector import MeasuredProjector
from status.handlers import Projector


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Container:
    """Everything one status process runs with."""

    settings: Settings
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    read_models: MongoReadModels
    webhooks: MongoWebhooks
    workspaces: WorkspaceDirectory
    request_limiter: RequestLimiter
    projector: MeasuredProjector
    source: KafkaEventSource | None


def build(settings: Settings) -> Container:
    name = instance_name("status", settings)
    client = make_client(settings.infra, name)
    db = database(client, settings.infra)
    read_models = MongoReadModels(db, now_ms=now_ms)
    webhooks = MongoWebhooks(db, now_ms=now_ms)
    projector = MeasuredProjector(
        Projector(
            read_models,
            webhooks,
            now_ms=now_ms,
            cache_size=settings.cache_size,
            notice_max_age_ms=settings.notice_max_age_seconds * 1000,
        )
    )
    source = (
        KafkaEventSource(
            settings.infra,
            group_id=settings.consumer_group,
            client_id=name,
            max_records=settings.chunk_max_records,
            wait_ms=settings.chunk_wait_ms,
            on_rebalance=projector.forget,
        )
        if settings.project
        else None
    )
    return Container(
        settings=settings,
        client=client,
        db=db,
        read_models=read_models,
        webhooks=webhooks,
        workspaces=WorkspaceDirectory(db),
        request_limiter=RequestLimiter(),
        projector=projector,
        source=source,
    )
