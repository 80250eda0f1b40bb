"""The dispatcher's state in MongoDB / FerretDB, in its own database.

FerretDB 1.24 on SQLite answers every query, even one by `_id`, by scanning the collection (its `_id` index
is not used for lookups), so the cost of a read is the size of the collection it reads. The queue is
therefore split into many small collections that are read whole and dropped when consumed: one per lane
segment (`dispatch_q__<batch>__<lane>__<segment>`, one document holding up to SEGMENT_SIZE contacts) and one
per batch and minute of due retries (`dispatch_t__<batch>__<minute>`). Inserts are cheap (a unique-index
check), so attempts and outcomes are insert-only and their unique `_id` is the proof of "done once".

Queue entries are stored packed (ADR 0025): FerretDB converts every BSON element to and from JSON, so a
segment of 512 sub-documents took ~77 ms to read and the same entries as one binary value ~6 ms
(`make bench-layouts`). No query looks inside an entry; the fields that are queried (`partition`, `_id`)
stay plain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pymongo import DeleteOne
from pymongo.asynchronous.database import AsyncDatabase

from dispatcher.domain.batch import QueuedContact
from dispatcher.domain.lease import variables_doc, variables_of
from dispatcher.ports import Doc
from shared.mongo import MAX_BULK_UPDATES, few_at_a_time, insert_new

BATCHES = "dispatch_batches"
FINISHED_BATCHES = "dispatch_batches_done"
LEASES = "dispatch_leases"
"""Leases stored one document each, before books (ADR 0025): read once by a new owner, then moved."""
LEASE_BOOKS = "dispatch_lease_books"
LEASE_ENDS = "dispatch_lease_ends"
ATTEMPTS = "dispatch_attempts"
_SEGMENT = "dispatch_q__"
_TIMERS = "dispatch_t__"
_OUTCOMES = "dispatch_o__"


def entry_doc(c: QueuedContact, *, with_trace: bool = True) -> Doc:
    doc: Doc = {
        "c": c.contact_id,
        "r": c.row_number,
        "p": c.phone_number,
        "v": variables_doc(c.variables),
        "l": c.lane,
        "n": c.attempt_number,
        "h": list(c.previous),
    }
    if with_trace and c.trace:
        doc["t"] = c.trace  # optional: untraced entries, and those written before, have no `t`
    return doc


def segment_docs(entries: Sequence[QueuedContact]) -> list[Doc]:
    """A lane segment's entries, its trace context stored only where it changes: an upload's contacts share
    one `traceparent`, so a segment holds it about once, not 512 times. The first entry of every append
    holds `t` (also "" for untraced work), so an append never inherits the trace of the one before."""
    docs: list[Doc] = []
    previous: str | None = None
    for c in entries:
        doc = entry_doc(c, with_trace=False)
        if c.trace != previous:
            doc["t"] = previous = c.trace
        docs.append(doc)
    return docs


def pack(docs: Sequence[Any]) -> bytes:
    """Entries as one opaque value (stored as BSON binary: any text a CSV cell holds, NUL included)."""
    return orjson.dumps(list(docs))


def unpack(value: bytes) -> list[Any]:
    docs: list[Any] = orjson.loads(value)
    return docs


def stored_segment(doc: Doc) -> list[Doc]:
    """A segment document's entries in append order: packed appends in `b`, after any entries written one
    sub-document each (`e`, before ADR 0025) by an earlier version."""
    docs: list[Doc] = list(doc.get("e") or ())
    for value in doc.get("b") or ():
        docs.extend(unpack(value))
    return docs


def timer_doc(c: QueuedContact, due: datetime) -> Doc:
    return {"_id": f"{c.contact_id}_a{c.attempt_number}", "x": pack([entry_doc(c)]), "due": due}


def timer_entry(batch_id: str, d: Doc) -> QueuedContact:
    """Reads what `timer_doc` wrote (and the unpacked entries written before it)."""
    return entry_of(batch_id, unpack(d["x"])[0] if "x" in d else d)


def segment_entries(batch_id: str, docs: Sequence[Doc]) -> list[QueuedContact]:
    """Reads what `segment_docs` wrote (and segments written before traces were kept: no `t` at all)."""
    entries: list[QueuedContact] = []
    trace = ""
    for d in docs:
        trace = d.get("t", trace)
        entries.append(entry_of(batch_id, d, trace))
    return entries


def entry_of(batch_id: str, d: Doc, trace: str | None = None) -> QueuedContact:
    """An entry; `trace` is the context inherited from the segment (a retry bucket's entry has its own)."""
    return QueuedContact(
        contact_id=d["c"],
        batch_id=batch_id,
        row_number=int(d["r"]),
        phone_number=d["p"],
        variables=variables_of(d.get("v")),
        lane=d.get("l", ""),
        attempt_number=int(d.get("n", 1)),
        previous=tuple(d.get("h") or ()),
        trace=(d.get("t") or "") if trace is None else trace,
    )


class MongoDispatchStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db

    async def prepare(self) -> None:
        # Collections are created on first insert; nothing to index beyond `_id` (see the module docstring).
        return None

    # --- batches -------------------------------------------------------------------------------------------

    async def live_batches(self, partition: int) -> list[Doc]:
        return [doc async for doc in self._db[BATCHES].find({"partition": partition})]

    async def finished_batch(self, batch_id: str) -> Doc | None:
        return await self._db[FINISHED_BATCHES].find_one({"_id": batch_id})

    async def save_batches(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            await self._db[BATCHES].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def retire_batch(self, doc: Doc) -> None:
        """Move a finished batch out of the live collection (which every save scans)."""
        await self._db[FINISHED_BATCHES].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        await self._db[BATCHES].delete_one({"_id": doc["_id"]})
        await self._db[_OUTCOMES + doc["_id"]].drop()

    # --- lane segments -------------------------------------------------------------------------------------

    @staticmethod
    def _segment(batch_id: str, lane: int, segment: int) -> str:
        return f"{_SEGMENT}{batch_id}__{lane}__{segment}"

    async def append_segment(
        self, batch_id: str, lane: int, segment: int, entries: Sequence[QueuedContact]
    ) -> None:
        await self._db[self._segment(batch_id, lane, segment)].update_one(
            {"_id": "s"}, {"$push": {"b": pack(segment_docs(entries))}}, upsert=True
        )

    async def read_segment(self, batch_id: str, lane: int, segment: int) -> list[QueuedContact]:
        doc = await self._db[self._segment(batch_id, lane, segment)].find_one({"_id": "s"})
        return segment_entries(batch_id, stored_segment(doc)) if doc else []

    async def drop_segment(self, batch_id: str, lane: int, segment: int) -> None:
        await self._db[self._segment(batch_id, lane, segment)].drop()

    async def segments(self) -> dict[tuple[str, int], list[int]]:
        found: dict[tuple[str, int], list[int]] = {}
        for name in await self._db.list_collection_names():
            if name.startswith(_SEGMENT):
                batch_id, lane, segment = name[len(_SEGMENT) :].rsplit("__", 2)
                found.setdefault((batch_id, int(lane)), []).append(int(segment))
        return found

    # --- retry timers --------------------------------------------------------------------------------------

    @staticmethod
    def _timers(batch_id: str, minute: int) -> str:
        return f"{_TIMERS}{batch_id}__{minute}"

    async def add_timers(
        self, batch_id: str, minute: int, entries: Sequence[tuple[QueuedContact, datetime]]
    ) -> None:
        await insert_new(self._db[self._timers(batch_id, minute)], [timer_doc(c, due) for c, due in entries])

    async def read_timers(self, batch_id: str, minute: int) -> list[tuple[QueuedContact, datetime]]:
        cursor = self._db[self._timers(batch_id, minute)].find({})
        return [(timer_entry(batch_id, d), d["due"]) async for d in cursor]

    async def drop_timers(self, batch_id: str, minute: int) -> None:
        await self._db[self._timers(batch_id, minute)].drop()

    async def timer_minutes(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for name in await self._db.list_collection_names():
            if name.startswith(_TIMERS):
                batch_id, minute = name[len(_TIMERS) :].rsplit("__", 1)
                found.setdefault(batch_id, set()).add(int(minute))
        return found

    # --- attempts and leases -------------------------------------------------------------------------------

    async def insert_attempts(self, docs: Sequence[Doc]) -> set[str]:
        return await insert_new(self._db[ATTEMPTS], docs)

    async def insert_lease_book(self, book_id: str, partition: int, leases: Sequence[Doc]) -> None:
        await self._db[LEASE_BOOKS].insert_one(
            {"_id": book_id, "partition": partition, "leases": pack(leases)}
        )

    async def lease_books(self, partition: int) -> dict[str, list[Doc]]:
        cursor = self._db[LEASE_BOOKS].find({"partition": partition})
        return {str(d["_id"]): unpack(d["leases"]) async for d in cursor}

    async def delete_lease_books(self, book_ids: Sequence[str]) -> None:
        await _delete_by_id(self._db[LEASE_BOOKS], book_ids)

    async def insert_lease_ends(
        self, ends_id: str, partition: int, attempt_ids: Sequence[str], books: Sequence[str]
    ) -> None:
        doc = {"_id": ends_id, "partition": partition, "ended": pack(attempt_ids), "books": list(books)}
        await self._db[LEASE_ENDS].insert_one(doc)

    async def lease_ends(self, partition: int) -> dict[str, tuple[list[str], list[str]]]:
        cursor = self._db[LEASE_ENDS].find({"partition": partition})
        return {str(d["_id"]): (unpack(d["ended"]), list(d["books"])) async for d in cursor}

    async def delete_lease_ends(self, ends_ids: Sequence[str]) -> None:
        await _delete_by_id(self._db[LEASE_ENDS], ends_ids)

    async def unbooked_leases(self, partition: int) -> list[Doc]:
        return [doc async for doc in self._db[LEASES].find({"partition": partition})]

    async def drop_unbooked_leases(self, partition: int) -> None:
        await self._db[LEASES].delete_many({"partition": partition})

    # --- outcomes ------------------------------------------------------------------------------------------

    async def insert_outcomes(self, batch_id: str, docs: Sequence[Doc]) -> set[str]:
        return await insert_new(self._db[_OUTCOMES + batch_id], docs)

    async def outcomes(self, batch_id: str, contact_ids: Sequence[str]) -> list[Doc]:
        # By `_id`, a few at a time: an `$in` list is a scan of the batch's outcomes on FerretDB (ADR 0025),
        # and a replay after a restart asks for thousands at a time.
        collection = self._db[_OUTCOMES + batch_id]
        docs = await few_at_a_time(lambda c: collection.find_one({"_id": c}), contact_ids)
        return [d for d in docs if d is not None]

    async def outcome_counts(self, batch_id: str) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$final", "n": {"$sum": 1}}}]
        cursor = await self._db[_OUTCOMES + batch_id].aggregate(pipeline)
        return {str(d["_id"]): int(d["n"]) async for d in cursor}


async def _delete_by_id(collection: Any, ids: Sequence[str]) -> None:
    # One statement per id, a bulk of them per command: FerretDB answers `_id` equality from its index but
    # an `$in` list by scanning the collection (ADR 0025); bulks stay under its limit (ADR 0004).
    for start in range(0, len(ids), MAX_BULK_UPDATES):
        chunk = ids[start : start + MAX_BULK_UPDATES]
        await collection.bulk_write([DeleteOne({"_id": i}) for i in chunk], ordered=False)
