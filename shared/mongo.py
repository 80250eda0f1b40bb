"""The MongoDB client factory. Stays inside what FerretDB 1.24 and MongoDB both support (DESIGN.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import InfraSettings

Document = dict[str, Any]

MAX_BULK_UPDATES = 90
"""Most update operations in one `bulk_write`: FerretDB 1.24 hangs at 100 or more (ADR 0004)."""

CONCURRENT_READS = 8
"""Lookups in flight at once for `few_at_a_time`: each is mostly a round trip to FerretDB, which has the
pool; far below its 100 connections even with several replicas (ADR 0004)."""

_K = TypeVar("_K")
_R = TypeVar("_R")


async def few_at_a_time(read: Callable[[_K], Awaitable[_R]], keys: Sequence[_K]) -> list[_R]:
    """`read` of every key, in order, `CONCURRENT_READS` in flight at once. For lookups by `_id` or another
    equality: FerretDB does not push an `$in` list down, so one query for many keys scans the collection."""
    out: list[_R] = []
    for start in range(0, len(keys), CONCURRENT_READS):
        out.extend(await asyncio.gather(*(read(k) for k in keys[start : start + CONCURRENT_READS])))
    return out


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
