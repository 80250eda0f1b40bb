"""In-memory fakes of the ingest ports (same interfaces as the adapters)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime
from typing import Any

from ingest.adapters.contact_wire import encode_contacts
from ingest.domain.batch import BatchRecord, Lifecycle, PublishCursor
from ingest.ports import JudgedRow
from shared.events import AnyMessage, Message, decode


class FakeSink:
    """Keeps every published message, decoded from its wire form (so the wire format is exercised)."""

    def __init__(self, *, fail_after_contact_calls: int | None = None) -> None:
        self.messages: list[AnyMessage] = []
        self._contact_calls = 0
        self._fail_after = fail_after_contact_calls

    async def publish(self, messages: Sequence[Message]) -> None:
        self.messages.extend(decode(m.model_dump_json()) for m in messages)

    async def send_contacts(
        self, batch: BatchRecord, rows: Sequence[JudgedRow], now: datetime
    ) -> Awaitable[None]:
        """Sent in call order; a failure is the acknowledgement's (as a broker that went away would)."""
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._fail_after is not None and self._contact_calls >= self._fail_after:
            acknowledged.set_exception(ConnectionError("broker went away"))
            return acknowledged
        self._contact_calls += 1
        self.messages.extend(
            decode(b) for b in encode_contacts(batch.workspace_id, batch.batch_id, rows, now)
        )
        acknowledged.set_result(None)
        return acknowledged


class MemoryUploads:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, int], bytes] = {}

    async def write_chunk(self, batch_id: str, number: int, data: bytes) -> None:
        self.stored[(batch_id, number)] = data

    async def _iter(self, batch_id: str, count: int) -> AsyncIterator[bytes]:
        for n in range(count):
            yield self.stored[(batch_id, n)]

    def chunks(self, batch_id: str, count: int) -> AsyncIterator[bytes]:
        return self._iter(batch_id, count)

    async def delete(self, batch_id: str) -> None:
        for key in [k for k in self.stored if k[0] == batch_id]:
            del self.stored[key]


class MemoryBatches:
    def __init__(self) -> None:
        self.docs: dict[str, BatchRecord] = {}

    async def create(self, batch: BatchRecord) -> None:
        self.docs[batch.batch_id] = batch

    async def get(self, workspace_id: str, batch_id: str) -> BatchRecord | None:
        found = self.docs.get(batch_id)
        return found if found and found.workspace_id == workspace_id else None

    async def get_any(self, batch_id: str) -> BatchRecord | None:
        return self.docs.get(batch_id)

    async def set_lifecycle(self, batch_id: str, lifecycle: Lifecycle) -> None:
        self.docs[batch_id] = self.docs[batch_id].model_copy(update={"lifecycle": lifecycle})


class MemoryCursors:
    def __init__(self) -> None:
        self.docs: dict[str, PublishCursor] = {}

    async def load(self, batch_id: str) -> PublishCursor | None:
        return self.docs.get(batch_id)

    async def save(self, cursor: PublishCursor) -> None:
        self.docs[cursor.batch_id] = cursor

    async def unfinished(self) -> list[PublishCursor]:
        return [c for c in self.docs.values() if c.state == "publishing"]


class StaticDnc:
    def __init__(self, numbers: set[str] | None = None) -> None:
        self._numbers = numbers or set()

    async def numbers(self, workspace_id: str) -> set[str]:
        return set(self._numbers)


class StaticProgress:
    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self._counts = counts or {}

    async def counts(self, workspace_id: str, batch_id: str) -> dict[str, Any]:
        return dict(self._counts)
