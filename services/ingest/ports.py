"""The ports the ingest use cases depend on; adapters implement them, unit tests fake them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
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
    """A skipped row, ready to publish: its verdict and variables (encoded as `ContactSkipped` when
    published)."""

    verdict: Verdict
    variables: dict[str, str]


JudgedRow = bytes | ContactRow
"""A row ready to publish: an accepted row is the `ContactAccepted` body the workers prepared
(`PreparedRows`), so nothing is built for it on the event loop; a skipped row is a `ContactRow`."""


@dataclass(frozen=True)
class RecordBlock:
    header: Header
    records: list[Record]


@dataclass(frozen=True)
class ContactContext:
    """What a prepared contact event needs besides its row."""

    workspace_id: str
    batch_id: str
    default_region: str | None
    occurred_at: datetime
    encode: bool = True
    """False when only the numbers matter (validation)."""


@dataclass(frozen=True)
class PreparedRows:
    """Per record of a block: the normalised number (see `domain.phone.normalise_many`) and, when the
    number is valid, the row's `ContactAccepted` wire body (b"" otherwise, or when not encoding).

    Building the accepted body in the workers keeps the event loop free: only the rows that the judge
    skips (duplicates, do-not-call: a few percent) are encoded afterwards."""

    normalised: list[str]
    accepted_bodies: list[bytes]


class EventSink(Protocol):
    """Publishes contract messages (returning once Kafka acknowledged them) and bulk contact events."""

    async def publish(self, messages: Sequence[Message]) -> None: ...

    async def send_contacts(
        self, batch: BatchRecord, rows: Sequence[JudgedRow], now: datetime
    ) -> Awaitable[None]:
        """Hands the rows' contact events to the producer, after every earlier call's, and returns their
        acknowledgement: awaiting it returns once Kafka acknowledged them all, or raises."""
        ...


class RowPreparer(Protocol):
    """Normalises a block's numbers to E.164 and encodes its variables (possibly in other processes)."""

    async def prepare(self, block: RecordBlock, context: ContactContext) -> PreparedRows: ...


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
