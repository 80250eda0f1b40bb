"""The interfaces the status use cases depend on; adapters implement them for MongoDB, Kafka and HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.events import AnyMessage
from status.domain.batches import BatchView
from status.domain.calls import CallView

FEED_PAGE = 100
"""Feed entries carry `page = (seq - 1) // 100`: the live feed is read 100 entries per equality query."""

LIST_BUCKET = 100
"""Positions in a batch's per-status call list are grouped in buckets of 100 (an equality query each)."""

YIELD_EVERY = 500
"""Records the projector decodes or applies between two turns of the event loop, which the query API
shares: a replay's chunk holds tens of thousands, which would otherwise hold every request up for seconds."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message sits in Kafka: `<topic>:<partition>` (without the deployment prefix) and its offset."""

    partition: str
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded message and where it came from."""

    message: AnyMessage
    position: Position
    trace: str = ""
    """The W3C `traceparent` the message arrived with ("" without one)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of a batch's live feed; `seq` is the Server-Sent-Events id."""

    batch_id: str
    workspace_id: str
    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(slots=True)
class StatusLists:
    """Where call documents sit in their batch's per-status lists, so a page of `?status=failed` is found
    by equality lookups instead of a skip over every failed call (FerretDB pushes down neither sort nor skip).

    Call documents are stored as insert-only versions (FerretDB updates rewrite the whole collection, see
    ADR 0041): each version takes the next position in its status list and its predecessor's position is
    marked vacated. `live[status][bucket]` counts the positions still occupied in each bucket of 100.
    """

    next_pos: dict[str, int] = field(default_factory=dict)
    live: dict[str, list[int]] = field(default_factory=dict)

    def copy(self) -> StatusLists:
        return StatusLists(dict(self.next_pos), {k: list(v) for k, v in self.live.items()})

    def enter(self, status: str) -> int:
        pos = self.next_pos.get(status, 0) + 1
        self.next_pos[status] = pos
        buckets = self.live.setdefault(status, [])
        bucket = (pos - 1) // LIST_BUCKET
        while len(buckets) <= bucket:
            buckets.append(0)
        buckets[bucket] += 1
        return pos

    def leave(self, status: str, pos: int) -> None:
        buckets = self.live.get(status, [])
        bucket = (pos - 1) // LIST_BUCKET
        if bucket < len(buckets) and buckets[bucket] > 0:
            buckets[bucket] -= 1

    def locate(self, status: str, skip: int) -> tuple[int, int]:
        """The bucket holding the `skip`-th live member (0-based) and how many live ones precede it there."""
        seen = 0
        for bucket, live in enumerate(self.live.get(status, [])):
            if seen + live > skip:
                return bucket, skip - seen
            seen += live
        return len(self.live.get(status, [])), 0

    def buckets(self, status: str) -> int:
        return len(self.live.get(status, []))

    def live_in(self, status: str, bucket: int) -> int:
        """How many of the bucket's positions are still occupied."""
        buckets = self.live.get(status, [])
        return buckets[bucket] if 0 <= bucket < len(buckets) else 0

    def filled(self, status: str, bucket: int) -> bool:
        """Whether every position of the bucket has been taken (its members are then fixed, see
        `adapters/list_pages.py`)."""
        return self.next_pos.get(status, 0) >= (bucket + 1) * LIST_BUCKET


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A batch document as stored: the view plus its list bookkeeping."""

    view: BatchView
    lists: StatusLists


@dataclass(frozen=True, slots=True)
class StoredCall:
    """The latest stored version of a call document."""

    view: CallView
    version: int
    pos: int


@dataclass(frozen=True, slots=True)
class CallWrite:
    """A new version of a call document, and the version it supersedes."""

    view: CallView
    version: int
    pos: int
    previous: StoredCall | None


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
    """Everything one projected chunk changes, written in the order `ReadModels.save` documents.

    `batches` are the projector's own records of each batch (with the offsets it holds); `shown` are the
    batch documents readers see, written only after the call versions, so a batch never reads further
    along (complete, or with higher counts) than its calls."""

    feed: list[FeedEntry] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    batches: list[StoredBatch] = field(default_factory=list)
    calls: list[CallWrite] = field(default_factory=list)
    shown: list[StoredBatch] = field(default_factory=list)


class ReadModels(Protocol):
    """The status read models: batch and call documents, the live feed and the webhook outbox."""

    async def load_batch(self, batch_id: str) -> StoredBatch | None:
        """The projector's record of the batch (which may be ahead of the document readers see)."""
        ...

    async def load_calls(self, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        """The latest versions that exist among `contact_ids`."""
        ...

    async def load_batch_calls(self, batch_id: str) -> Mapping[str, StoredCall]:
        """The latest version of every call document of the batch, in one pass over the store."""
        ...

    async def load_calls_near(self, batch_id: str, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        """The latest versions that exist among `contact_ids` of one batch, and of the calls stored beside
        them (rows close to theirs) that the reads found on the way: many of a large batch's contacts are
        read a few queries at a time instead of one each."""
        ...

    async def save(self, changes: Changes) -> None:
        """Inserts feed entries and outbox items first (idempotent ids), then writes the projector's batch
        records, then inserts the call versions, then writes the batch documents readers see: a crash
        part-way is repaired by projecting the chunk again, and a reader never sees a batch ahead of its
        calls."""
        ...


class WebhookRoutes(Protocol):
    """Which endpoints want a workspace's events."""

    async def endpoints(self, workspace_id: str) -> Sequence[Endpoint]: ...


class Outbox(Protocol):
    """Webhook items waiting for delivery."""

    async def pending(self) -> Sequence[OutboxItem]: ...

    async def remove(self, item_ids: Sequence[str]) -> None: ...


class DeliveryLog(Protocol):
    """Signing secrets and the per-endpoint log of delivery attempts."""

    async def secret_for(self, workspace_id: str, endpoint_id: str) -> str | None: ...

    async def log(self, entry: dict[str, Any]) -> None: ...

    async def final_logged(self, item_id: str, max_attempts: int) -> bool: ...


class WebhookSender(Protocol):
    """POSTs one body; returns the HTTP status (None when no response came) and an error text."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]: ...
