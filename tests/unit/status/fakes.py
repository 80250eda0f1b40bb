"""In-memory adapters with the same interfaces as the MongoDB ones, and a store that can crash mid-write."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from status.domain.calls import row_number_of
from status.ports import Changes, Endpoint, FeedEntry, OutboxItem, StatusLists, StoredBatch, StoredCall


class Crash(Exception):
    """The process died part-way through a write."""


class MemoryReadModels:
    """The read models in dictionaries; after `crash_after` more writes, `save` raises (a crash mid-chunk).
    `batches` are the documents readers see, `ledger` the projector's records; `after_write`, if set, is
    called after every single write (to check what a reader could see at that moment)."""

    def __init__(self) -> None:
        self.batches: dict[str, StoredBatch] = {}
        self.ledger: dict[str, StoredBatch] = {}
        self.after_write: Callable[[], None] | None = None
        self.calls: dict[str, StoredCall] = {}
        self.versions: set[tuple[str, int]] = set()
        self.feed: dict[tuple[str, int], FeedEntry] = {}
        self.outbox: dict[str, OutboxItem] = {}
        self.crash_after: int | None = None
        self.reads = 0
        self.scans = 0
        self.bucket_reads = 0

    async def load_batch(self, batch_id: str) -> StoredBatch | None:
        stored = self.ledger.get(batch_id)
        return StoredBatch(stored.view, stored.lists.copy()) if stored else None

    async def load_calls(self, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        self.reads += len(contact_ids)
        return {c: self.calls[c] for c in contact_ids if c in self.calls}

    async def load_batch_calls(self, batch_id: str) -> Mapping[str, StoredCall]:
        self.scans += 1
        return {c: s for c, s in self.calls.items() if s.view.batch_id == batch_id}

    async def load_calls_near(self, batch_id: str, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        # As the store does, simplified: the whole row bucket (a hundred rows) of each wanted contact.
        buckets = {((row_number_of(c) or 0) - 1) // 100 for c in contact_ids}
        self.bucket_reads += len(buckets)
        return {
            c: stored
            for c, stored in self.calls.items()
            if stored.view.batch_id == batch_id and ((row_number_of(c) or 0) - 1) // 100 in buckets
        }

    def _write(self) -> None:
        if self.after_write is not None:
            self.after_write()
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crash_after = None
                raise Crash
            self.crash_after -= 1

    async def save(self, changes: Changes) -> None:
        for entry in changes.feed:
            self._write()
            self.feed.setdefault((entry.batch_id, entry.seq), entry)
        for item in changes.outbox:
            self._write()
            self.outbox.setdefault(item.item_id, item)
        for stored in changes.batches:
            self._write()
            self.ledger[stored.view.batch_id] = StoredBatch(stored.view, stored.lists.copy())
        for write in changes.calls:
            self._write()
            key = (write.view.contact_id, write.version)
            if key in self.versions:
                continue  # an insert of an existing id keeps the stored one
            self.versions.add(key)
            have = self.calls.get(write.view.contact_id)
            assert have is None or have.version < write.version, "versions go up"
            self.calls[write.view.contact_id] = StoredCall(write.view, write.version, write.pos)
        for stored in changes.shown:
            self._write()
            self.batches[stored.view.batch_id] = StoredBatch(stored.view, stored.lists.copy())
        if self.after_write is not None:
            self.after_write()

    def call_views(self) -> dict[str, object]:
        return {k: v.view for k, v in self.calls.items()}

    def lists(self, batch_id: str) -> StatusLists:
        return self.batches[batch_id].lists


class StaticRoutes:
    def __init__(self, endpoints: Sequence[Endpoint] = ()) -> None:
        self._endpoints = list(endpoints)

    async def endpoints(self, workspace_id: str) -> Sequence[Endpoint]:
        return [e for e in self._endpoints if e.workspace_id == workspace_id]
