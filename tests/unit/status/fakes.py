"""In-memory adapters with the same interfaces as the MongoDB ones, and a store that can crash mid-write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from status.domain.batches import BatchView
from status.domain.calls import CallView
from status.ports import Changes, Endpoint, FeedPage, OutboxItem


class Crash(Exception):
    """The process died part-way through a write."""


class MemoryReadModels:
    """The read models in dictionaries; `crash_after` writes, `save` raises (a crash mid-chunk)."""

    def __init__(self) -> None:
        self.batches: dict[str, BatchView] = {}
        self.calls: dict[str, CallView] = {}
        self.pages: dict[tuple[str, int], FeedPage] = {}
        self.outbox: dict[str, OutboxItem] = {}
        self.crash_after: int | None = None
        self.reads = 0

    async def load_batch(self, batch_id: str) -> BatchView | None:
        return self.batches.get(batch_id)

    async def load_calls(self, contact_ids: Sequence[str]) -> Mapping[str, CallView]:
        self.reads += len(contact_ids)
        return {c: self.calls[c] for c in contact_ids if c in self.calls}

    async def load_feed_page(self, batch_id: str, number: int) -> FeedPage | None:
        page = self.pages.get((batch_id, number))
        return replace(page, entries=list(page.entries)) if page else None

    def _write(self) -> None:
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crash_after = None
                raise Crash
            self.crash_after -= 1

    async def save(self, changes: Changes) -> None:
        for page in changes.feed_pages:
            self._write()
            self.pages[(page.batch_id, page.number)] = replace(page, entries=list(page.entries))
        for item in changes.outbox:
            self._write()
            self.outbox.setdefault(item.item_id, item)
        for batch in changes.batches:
            self._write()
            self.batches[batch.batch_id] = batch
        for view in changes.new_calls:
            self._write()
            assert view.contact_id not in self.calls, "a call document inserted twice"
            self.calls[view.contact_id] = view
        for view in changes.changed_calls:
            self._write()
            self.calls[view.contact_id] = view


class StaticRoutes:
    def __init__(self, endpoints: Sequence[Endpoint] = ()) -> None:
        self._endpoints = list(endpoints)

    async def endpoints(self, workspace_id: str) -> Sequence[Endpoint]:
        return [e for e in self._endpoints if e.workspace_id == workspace_id]
