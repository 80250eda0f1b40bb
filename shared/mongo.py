"""The MongoDB client factory. Stays inside what FerretDB 1.24 and MongoDB both support (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import InfraSettings

Document = dict[str, Any]

MAX_BULK_UPDATES = 90
"""Most update operations in one `bulk_write`: FerretDB 1.24 hangs at 100 or more (ADR 0004)."""


def make_client(infra: InfraSettings, app_name: str) -> AsyncMongoClient[Document]:
    # tz_aware so every datetime read back is timezone-aware, like the ones we write.
    return AsyncMongoClient(
        infra.mongo_url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        maxPoolSize=infra.mongo_max_pool,
        connect=False,
    )


def database(client: AsyncMongoClient[Document], infra: InfraSettings) -> AsyncDatabase[Document]:
    return client[infra.mongo_db]


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
