"""In-memory doubles of the dispatcher's ports, with the same duplicate semantics as the Mongo store."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import orjson

from dispatcher.domain.batch import QueuedContact
from dispatcher.ports import Doc
from shared.events import Message
from shared.topics import Topic


class MemoryStore:
    def __init__(self) -> None:
        self.batches: dict[str, Doc] = {}
        self.finished: dict[str, Doc] = {}
        self.segments_: dict[tuple[str, int, int], list[QueuedContact]] = {}
        self.timers: dict[tuple[str, int], dict[str, tuple[QueuedContact, datetime]]] = {}
        self.attempts: dict[str, Doc] = {}
        self.leases_: dict[str, Doc] = {}
        """Leases stored one document each (a version before lease books)."""
        self.books: dict[str, Doc] = {}
        self.ends: dict[str, Doc] = {}
        self.outcomes_: dict[str, dict[str, Doc]] = {}

    async def prepare(self) -> None:
        return None

    async def live_batches(self, partition: int) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.batches.values() if d["partition"] == partition]

    async def finished_batch(self, batch_id: str) -> Doc | None:
        return self.finished.get(batch_id)

    async def save_batches(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self.batches[doc["_id"]] = copy.deepcopy(doc)

    async def retire_batch(self, doc: Doc) -> None:
        self.finished[doc["_id"]] = copy.deepcopy(doc)
        self.batches.pop(doc["_id"], None)

    async def append_segment(
        self, batch_id: str, lane: int, segment: int, entries: Sequence[QueuedContact]
    ) -> None:
        self.segments_.setdefault((batch_id, lane, segment), []).extend(entries)

    async def read_segment(self, batch_id: str, lane: int, segment: int) -> list[QueuedContact]:
        return list(self.segments_.get((batch_id, lane, segment), []))

    async def drop_segment(self, batch_id: str, lane: int, segment: int) -> None:
        self.segments_.pop((batch_id, lane, segment), None)

    async def segments(self) -> dict[tuple[str, int], list[int]]:
        found: dict[tuple[str, int], list[int]] = {}
        for b, lane, s in self.segments_:
            found.setdefault((b, lane), []).append(s)
        return found

    async def add_timers(
        self, batch_id: str, minute: int, entries: Sequence[tuple[QueuedContact, datetime]]
    ) -> None:
        bucket = self.timers.setdefault((batch_id, minute), {})
        for c, due in entries:
            bucket.setdefault(f"{c.contact_id}_a{c.attempt_number}", (c, due))

    async def read_timers(self, batch_id: str, minute: int) -> list[tuple[QueuedContact, datetime]]:
        return list(self.timers.get((batch_id, minute), {}).values())

    async def drop_timers(self, batch_id: str, minute: int) -> None:
        self.timers.pop((batch_id, minute), None)

    async def timer_minutes(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for b, m in self.timers:
            found.setdefault(b, set()).add(m)
        return found

    @staticmethod
    def _insert(table: dict[str, Doc], docs: Sequence[Doc]) -> set[str]:
        new = set()
        for doc in docs:
            if doc["_id"] not in table:
                table[doc["_id"]] = copy.deepcopy(doc)
                new.add(doc["_id"])
        return new

    async def insert_attempts(self, docs: Sequence[Doc]) -> set[str]:
        return self._insert(self.attempts, docs)

    async def insert_lease_book(self, book_id: str, partition: int, leases: Sequence[Doc]) -> None:
        assert book_id not in self.books
        # Through JSON, as the Mongo store packs a book: times come back as ISO text.
        self.books[book_id] = {"partition": partition, "leases": orjson.loads(orjson.dumps(list(leases)))}

    async def lease_books(self, partition: int) -> dict[str, list[Doc]]:
        return {k: copy.deepcopy(b["leases"]) for k, b in self.books.items() if b["partition"] == partition}

    async def delete_lease_books(self, book_ids: Sequence[str]) -> None:
        for book_id in book_ids:
            self.books.pop(book_id, None)

    async def insert_lease_ends(
        self, ends_id: str, partition: int, attempt_ids: Sequence[str], books: Sequence[str]
    ) -> None:
        assert ends_id not in self.ends
        self.ends[ends_id] = {"partition": partition, "ended": list(attempt_ids), "books": list(books)}

    async def lease_ends(self, partition: int) -> dict[str, tuple[list[str], list[str]]]:
        return {
            k: (list(e["ended"]), list(e["books"]))
            for k, e in self.ends.items()
            if e["partition"] == partition
        }

    async def delete_lease_ends(self, ends_ids: Sequence[str]) -> None:
        for ends_id in ends_ids:
            self.ends.pop(ends_id, None)

    async def unbooked_leases(self, partition: int) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.leases_.values() if d["partition"] == partition]

    async def drop_unbooked_leases(self, partition: int) -> None:
        self.leases_ = {k: d for k, d in self.leases_.items() if d["partition"] != partition}

    def open_leases(self) -> dict[str, Doc]:
        """The stored leases a new owner would find open, by attempt id."""
        ended = {a for e in self.ends.values() for a in e["ended"]}
        found = {d["_id"]: d for b in self.books.values() for d in b["leases"] if d["_id"] not in ended}
        return found | {k: d for k, d in self.leases_.items() if k not in ended}

    async def insert_outcomes(self, batch_id: str, docs: Sequence[Doc]) -> set[str]:
        return self._insert(self.outcomes_.setdefault(batch_id, {}), docs)

    async def outcomes(self, batch_id: str, contact_ids: Sequence[str]) -> list[Doc]:
        table = self.outcomes_.get(batch_id, {})
        return [copy.deepcopy(table[c]) for c in contact_ids if c in table]

    async def outcome_counts(self, batch_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.outcomes_.get(batch_id, {}).values():
            counts[doc["final"]] = counts.get(doc["final"], 0) + 1
        return counts


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[Message, Topic | None]] = []
        self.carriers: dict[UUID, dict[str, str]] = {}
        """The W3C context each message was published with, when it was not the current one."""

    async def publish_many(
        self,
        messages: Iterable[Message],
        *,
        topic: Topic | None = None,
        carriers: Mapping[UUID, Mapping[str, str]] | None = None,
    ) -> int:
        items = list(messages)
        self.messages.extend((m, topic) for m in items)
        for m in items:
            if carriers and m.event_id in carriers:
                self.carriers[m.event_id] = dict(carriers[m.event_id])
        return len(items)

    def of(self, kind: type[Message]) -> list[Message]:
        return [m for m, _ in self.messages if isinstance(m, kind)]


class Plans:
    def __init__(self, cps: float = 1000.0, concurrent: int = 1000) -> None:
        self.cps, self.concurrent = cps, concurrent

    async def limits(self, workspace_id: str) -> tuple[float, int]:
        return self.cps, self.concurrent


class Dnc:
    def __init__(self) -> None:
        self.numbers: set[tuple[str, str]] = set()

    async def listed(self, workspace_id: str, phone_numbers: Sequence[str]) -> set[str]:
        return {n for n in phone_numbers if (workspace_id, n) in self.numbers}

    async def add(self, workspace_id: str, phone_numbers: Sequence[str], source: str) -> None:
        self.numbers.update((workspace_id, n) for n in phone_numbers)


class Clock:
    def __init__(self, at: datetime | None = None) -> None:
        # A Monday at 15:00 UTC: 10:00 in New York, inside the default window.
        self.at = at or datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
