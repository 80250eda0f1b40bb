"""The dispatcher's ports: what the use cases need from storage, the broker, plans, do-not-call and time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from dispatcher.domain.batch import QueuedContact
from shared.events import Message
from shared.topics import Topic

Doc = dict[str, Any]


class DispatchStore(Protocol):
    """Durable dispatcher state. Inserts tolerate duplicates and return the ids actually inserted, which is
    how a message replayed after a crash is recognised."""

    async def prepare(self) -> None: ...

    # batches
    async def live_batches(self, partition: int) -> list[Doc]: ...
    async def finished_batch(self, batch_id: str) -> Doc | None: ...
    async def save_batches(self, docs: Sequence[Doc]) -> None: ...
    async def retire_batch(self, doc: Doc) -> None: ...

    # the waiting queue: lane segments
    async def append_segment(
        self, batch_id: str, lane: int, segment: int, entries: Sequence[QueuedContact]
    ) -> None: ...
    async def read_segment(self, batch_id: str, lane: int, segment: int) -> list[QueuedContact]: ...
    async def drop_segment(self, batch_id: str, lane: int, segment: int) -> None: ...
    async def segments(self) -> dict[tuple[str, int], list[int]]:
        """Every stored segment number by (batch id, lane index)."""
        ...

    # retries: one timer bucket per batch and minute
    async def add_timers(
        self, batch_id: str, minute: int, entries: Sequence[tuple[QueuedContact, datetime]]
    ) -> None: ...
    async def read_timers(self, batch_id: str, minute: int) -> list[tuple[QueuedContact, datetime]]: ...
    async def drop_timers(self, batch_id: str, minute: int) -> None: ...
    async def timer_minutes(self) -> dict[str, set[int]]: ...

    # attempts and leases
    async def insert_attempts(self, docs: Sequence[Doc]) -> set[str]: ...

    # open leases, a round's in one book (domain.lease_book, ADR 0025)
    async def insert_lease_book(self, book_id: str, partition: int, leases: Sequence[Doc]) -> None: ...
    async def lease_books(self, partition: int) -> dict[str, list[Doc]]:
        """Every stored book of the partition: its leases by book id."""
        ...

    async def delete_lease_books(self, book_ids: Sequence[str]) -> None: ...
    async def insert_lease_ends(
        self, ends_id: str, partition: int, attempt_ids: Sequence[str], books: Sequence[str]
    ) -> None: ...
    async def lease_ends(self, partition: int) -> dict[str, tuple[list[str], list[str]]]:
        """Every stored ends record of the partition: (ended attempt ids, book ids) by record id."""
        ...

    async def delete_lease_ends(self, ends_ids: Sequence[str]) -> None: ...
    async def unbooked_leases(self, partition: int) -> list[Doc]:
        """Leases stored one document each by a version before books."""
        ...

    async def drop_unbooked_leases(self, partition: int) -> None: ...

    # terminal states: one per contact, ever
    async def insert_outcomes(self, batch_id: str, docs: Sequence[Doc]) -> set[str]: ...
    async def outcomes(self, batch_id: str, contact_ids: Sequence[str]) -> list[Doc]: ...
    async def outcome_counts(self, batch_id: str) -> dict[str, int]: ...


class EventSink(Protocol):
    async def publish_many(
        self,
        messages: Iterable[Message],
        *,
        topic: Topic | None = None,
        carriers: Mapping[UUID, Mapping[str, str]] | None = None,
    ) -> int:
        """Publish and await acknowledgements; `carriers` gives messages of another trace their W3C
        context by event id (the others carry the current one)."""
        ...


class PlanLimits(Protocol):
    async def limits(self, workspace_id: str) -> tuple[float, int]:
        """(calls per second, max concurrent calls) of the workspace's current plan."""
        ...


class DoNotCall(Protocol):
    async def listed(self, workspace_id: str, phone_numbers: Sequence[str]) -> set[str]:
        """The subset of `phone_numbers` on the workspace's do-not-call list right now."""
        ...

    async def add(self, workspace_id: str, phone_numbers: Sequence[str], source: str) -> None:
        """Lists the numbers (those listed already stay as they are)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware."""
        ...
