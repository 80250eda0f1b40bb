"""The MongoDB client factory. Stays inside what FerretDB 1.24 and MongoDB both support (DESIGN.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from prometheus_client import Counter
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import InfraSettings

Document = dict[str, Any]

MAX_BULK_UPDATES = 90
"""Most update operations in one `bulk_write`: FerretDB 1.24 hangs at 100 or more (ADR 0004)."""

CONCURRENT_READS = 8
"""Lookups in flight at once for `few_at_a_time`: each is mostly a round trip to FerretDB, which has the
pool; far below its 100 connections even with several replicas (ADR 0004)."""

DUPLICATE_KEY = 11000

_K = TypeVar("_K")
_R = TypeVar("_R")


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> set[str]:
    """Inserts in order, skipping documents whose `_id` exists (a write repeated after a crash, a number
    listed already); returns the ids this call inserted. Ordered, because FerretDB stops an unordered bulk
    insert at its first error anyway."""
    inserted: set[str] = set()
    rest = list(docs)
    while rest:
        try:
            await collection.insert_many(rest, ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or errors[0].get("code") != DUPLICATE_KEY:
                raise
            failed = int(errors[0]["index"])
            inserted.update(str(d["_id"]) for d in rest[:failed])
            rest = rest[failed + 1 :]
            continue
        inserted.update(str(d["_id"]) for d in rest)
        break
    return inserted


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
        event_listeners=[CommandMetrics()] if infra.mongo_command_metrics else [],
    )


COMMANDS = Counter(
    "batchcalls_mongo_commands_total",
    "Commands answered by the store, by collection and command (BC_MONGO_COMMAND_METRICS).",
    ["collection", "command", "result"],
)
DOCUMENTS = Counter(
    "batchcalls_mongo_documents_total",
    "Documents the store's commands wrote (insert, update, delete) or returned (find, getMore, aggregate).",
    ["collection", "command"],
)
COMMAND_SECONDS = Counter(
    "batchcalls_mongo_command_seconds_total",
    "Time from sending a command to its answer, summed, by collection and command.",
    ["collection", "command"],
)

_WRITES = {"insert": "documents", "update": "updates", "delete": "deletes"}
_COUNTED = {*_WRITES, "find", "getMore", "aggregate", "findAndModify", "count", "drop", "createIndexes"}


def collection_family(name: str) -> str:
    """A collection's name for a metric label: the dispatcher's per-batch collections (`dispatch_q__<batch>
    __<lane>__<segment>`) count as their family (`dispatch_q`), so the labels stay few."""
    return name.split("__", 1)[0]


class CommandMetrics(monitoring.CommandListener):
    """Counts commands, documents and time per collection (pymongo calls it around every command)."""

    def __init__(self) -> None:
        self._open: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name not in _COUNTED:
            return
        command = event.command
        target = command.get("collection") if name == "getMore" else command.get(name)
        family = collection_family(target) if isinstance(target, str) else "-"
        self._open[event.request_id] = (family, name)
        if name in _WRITES:
            DOCUMENTS.labels(family, name).inc(len(command.get(_WRITES[name]) or ()))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        opened = self._open.pop(event.request_id, None)
        if opened is None:
            return
        family, name = opened
        COMMANDS.labels(family, name, "ok").inc()
        COMMAND_SECONDS.labels(family, name).inc(event.duration_micros / 1e6)
        cursor = event.reply.get("cursor")
        if isinstance(cursor, dict):
            batch = cursor.get("firstBatch", cursor.get("nextBatch")) or ()
            DOCUMENTS.labels(family, name).inc(len(batch))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        opened = self._open.pop(event.request_id, None)
        if opened is not None:
            COMMANDS.labels(opened[0], opened[1], "failed").inc()
            COMMAND_SECONDS.labels(*opened).inc(event.duration_micros / 1e6)


def database(client: AsyncMongoClient[Document], infra: InfraSettings) -> AsyncDatabase[Document]:
    return client[infra.mongo_db]


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
