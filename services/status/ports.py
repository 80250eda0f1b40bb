"""The interfaces the status use cases depend on; adapters implement them for MongoDB, Kafka and HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.events import AnyMessage
from status.domain.batches import BatchView
from status.domain.calls import CallView

FEED_PAGE = 100
"""Entries per feed page document: the live feed is read by `_id` equality, one page at a time."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message sits in Kafka: `<topic>:<partition>` and its offset."""

    partition: str
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded message and where it came from."""

    message: AnyMessage
    position: Position
    published_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FeedEntry:
    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(slots=True)
class FeedPage:
    """Up to `FEED_PAGE` consecutive feed entries of one batch: page `n` holds seqs `n*100+1 .. n*100+100`."""

    batch_id: str
    workspace_id: str
    number: int
    entries: list[FeedEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A webhook notice addressed to one endpoint, waiting for the delivery task."""

    item_id: str
    endpoint_id: str
    workspace_id: str
    url: str
    notice_id: str
    event: str
    created_at: int
    body: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a workspace (or one batch) wants its webhook events, and which ones."""

    endpoint_id: str
    workspace_id: str
    url: str
    events: frozenset[str]


@dataclass(slots=True)
class Changes:
    """Everything one projected chunk changes, written in the order `ReadModels.save` documents."""

    feed_pages: list[FeedPage] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    batches: list[BatchView] = field(default_factory=list)
    new_calls: list[CallView] = field(default_factory=list)
    changed_calls: list[CallView] = field(default_factory=list)


class ReadModels(Protocol):
    """The status read models: batch and call documents, the live feed and the webhook outbox."""

    async def load_batch(self, batch_id: str) -> BatchView | None: ...

    async def load_calls(self, contact_ids: Sequence[str]) -> Mapping[str, CallView]:
        """The documents that exist among `contact_ids`."""
        ...

    async def load_feed_page(self, batch_id: str, number: int) -> FeedPage | None: ...

    async def save(self, changes: Changes) -> None:
        """Writes feed pages and outbox items first, then batch documents, then call documents, so a crash
        part-way is repaired by reprojecting the chunk (see `handlers.Projector`)."""
        ...


class WebhookRoutes(Protocol):
    """Which endpoints want a workspace's events."""

    async def endpoints(self, workspace_id: str) -> Sequence[Endpoint]: ...
