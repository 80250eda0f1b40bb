"""The ports the ingest use cases depend on; adapters implement them, unit tests fake them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ingest.domain.batch import BatchRecord, Lifecycle, PublishCursor
from ingest.domain.csv_layout import Header, Record
from ingest.domain.verdicts import Verdict
from shared.events import AgentSnapshot, Message


@dataclass(frozen=True)
class StoredAgent:
    agent: AgentSnapshot
    workspace_id: str
    created_at: datetime


@dataclass(frozen=True)
class ContactRow:
    """A judged row with its variables, ready to become a `ContactAccepted` or `ContactSkipped`."""

    verdict: Verdict
    variables: dict[str, str]


@dataclass(frozen=True)
class RecordBlock:
    header: Header
    records: list[Record]


class EventSink(Protocol):
    """Publishes contract messages and bulk contact events; returns once Kafka acknowledged them all."""

    async def publish(self, messages: Sequence[Message]) -> None: ...

    async def publish_contacts(
        self, batch: BatchRecord, rows: Sequence[ContactRow], now: datetime
    ) -> None: ...


class NumberValidator(Protocol):
    """Normalises numbers to E.164 (possibly in other processes); see `domain.phone.normalise_many`."""

    async def normalise(self, raws: list[str], default_region: str | None) -> list[str]: ...


class UploadStore(Protocol):
    """The durable copy of an upload, in numbered chunks."""

    async def write_chunk(self, batch_id: str, number: int, data: bytes) -> None: ...

    def chunks(self, batch_id: str, count: int) -> AsyncIterator[bytes]: ...

    async def delete(self, batch_id: str) -> None: ...


class RecordReader(Protocol):
    """Turns a stream of raw upload bytes into blocks of CSV records (the parsing may run off the loop)."""

    def blocks(self, chunks: AsyncIterator[bytes], rows_per_block: int) -> AsyncIterator[RecordBlock]: ...


class BatchStore(Protocol):
    async def create(self, batch: BatchRecord) -> None: ...

    async def get(self, workspace_id: str, batch_id: str) -> BatchRecord | None: ...

    async def set_lifecycle(self, batch_id: str, lifecycle: Lifecycle) -> None: ...

    async def get_any(self, batch_id: str) -> BatchRecord | None: ...


class CursorStore(Protocol):
    async def load(self, batch_id: str) -> PublishCursor | None: ...

    async def save(self, cursor: PublishCursor) -> None: ...

    async def unfinished(self) -> list[PublishCursor]: ...


class AgentStore(Protocol):
    async def create(self, stored: StoredAgent) -> None: ...

    async def get(self, workspace_id: str, agent_id: str) -> StoredAgent | None: ...

    async def page(self, workspace_id: str, skip: int, limit: int) -> tuple[list[StoredAgent], int]: ...


class IdempotencyStore(Protocol):
    async def reserve(self, workspace_id: str, key: str, batch_id: str) -> dict[str, Any] | None:
        """None when reserved for `batch_id`; else the existing record (`response` set once done)."""
        ...

    async def complete(self, workspace_id: str, key: str, response: dict[str, Any]) -> None: ...

    async def release(self, workspace_id: str, key: str) -> None: ...


class DoNotCallNumbers(Protocol):
    async def numbers(self, workspace_id: str) -> set[str]: ...


class BatchProgress(Protocol):
    """The status service's read model, read-only: live counts for the cancel response."""

    async def counts(self, workspace_id: str, batch_id: str) -> dict[str, int]: ...
