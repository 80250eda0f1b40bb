"""A batch as the dispatcher sees it: its settings, its state, and its queue lanes.

A lane holds the batch's contacts whose numbers share one calling window (`recipient_zone.lane_key`), in
arrival order, so a closed window holds its lane without per-contact timers while other lanes dial.
A lane is stored as numbered segments (one small collection each, read whole and dropped once consumed),
because FerretDB on SQLite scans a collection for every query, even one by `_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dispatcher.domain.calling_window import CallingWindow, window_for
from dispatcher.domain.recipient_zone import country_zones, lane_zones
from dispatcher.domain.retry_policy import RetryPolicy
from shared.events import AgentSnapshot, CallingWindowSpec, RetryPolicySpec

SEGMENT_SIZE = 512


class BatchState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


@dataclass(frozen=True)
class QueuedContact:
    """One contact waiting for its next attempt: fresh from a lane, or a retry whose time has come."""

    contact_id: str
    batch_id: str
    row_number: int
    phone_number: str
    variables: dict[str, str]
    lane: str
    attempt_number: int = 1
    previous: tuple[str, ...] = ()
    """Outcomes of the earlier attempts, oldest first."""
    trace: str = ""
    """The W3C `traceparent` of the work that queued this attempt (its upload, or the end of the attempt
    before), so the call request dialed later continues that trace; empty when there was none."""


@dataclass
class Lane:
    """A FIFO of the batch's contacts that share one calling window, stored as numbered segments of up to
    SEGMENT_SIZE contacts. The cursor is (segment, position); segments before it are consumed."""

    key: str
    index: int
    cursor_segment: int = 0
    cursor_pos: int = 0
    tail_segment: int = 0
    tail_len: int = 0
    # Runtime only: the cursor segment's entries from the cursor on (None: not loaded), window cache.
    page: list[QueuedContact] | None = None
    closed_until: datetime | None = None
    open_until: datetime | None = None

    @property
    def exhausted(self) -> bool:
        """Nothing to take now (more may still arrive)."""
        return (
            self.cursor_segment > self.tail_segment
            or (self.cursor_segment == self.tail_segment and self.cursor_pos >= self.tail_len)
        ) and not self.page

    def append(self, entries: list[QueuedContact]) -> list[tuple[int, list[QueuedContact]]]:
        """Place new contacts at the tail; returns (segment, entries) to write, in order."""
        writes: list[tuple[int, list[QueuedContact]]] = []
        if self.page is None and self.cursor_segment == self.tail_segment and self.tail_len == 0:
            self.page = []  # a segment this process starts holds nothing stored: no need to read it back
        rest = entries
        while rest:
            if self.tail_len >= SEGMENT_SIZE:
                self.tail_segment += 1
                self.tail_len = 0
            room = SEGMENT_SIZE - self.tail_len
            chunk, rest = rest[:room], rest[room:]
            writes.append((self.tail_segment, chunk))
            self.tail_len += len(chunk)
            if self.page is not None and self.cursor_segment == self.tail_segment:
                self.page.extend(chunk)
        return writes

    def take(self) -> QueuedContact | None:
        """The next contact of the loaded page, advancing the cursor (None when the page is empty)."""
        if not self.page:
            return None
        self.cursor_pos += 1
        return self.page.pop(0)

    def segment_consumed(self) -> bool:
        """The cursor segment is full and every entry was taken: it can be dropped and the cursor moved."""
        return self.cursor_pos >= SEGMENT_SIZE and not self.page

    def next_segment(self) -> int:
        done = self.cursor_segment
        self.cursor_segment += 1
        self.cursor_pos = 0
        self.page = None
        return done

    def load(self, entries: list[QueuedContact]) -> None:
        self.page = entries[self.cursor_pos :]

    @property
    def waiting(self) -> int:
        """Contacts placed in the lane and not yet taken, derived from the cursor and the tail."""
        return max(
            0, (self.tail_segment - self.cursor_segment) * SEGMENT_SIZE + self.tail_len - self.cursor_pos
        )


@dataclass
class Batch:
    batch_id: str
    workspace_id: str
    partition: int
    known: bool = False
    """BatchAccepted seen; contacts that arrive before it are queued but not dialed."""
    state: BatchState = BatchState.ACTIVE
    agent: AgentSnapshot | None = None
    scheduled_at: datetime | None = None
    window_spec: CallingWindowSpec | None = None
    retry_spec: RetryPolicySpec = field(default_factory=RetryPolicySpec)
    dry_run: bool = False
    total_rows: int = 0
    ingested_accepted: int | None = None
    ingested_skipped: int = 0
    started: bool = False
    fresh_dispatched: int = 0
    cancel_swept: bool = False
    lanes: dict[str, Lane] = field(default_factory=dict)
    # Runtime only.
    timer_minutes: set[int] = field(default_factory=set)
    ready: list[tuple[QueuedContact, datetime, int]] = field(default_factory=list)
    """Retries read from their minute bucket and not yet taken: (entry, due time, bucket minute)."""
    loaded_minutes: dict[int, int] = field(default_factory=dict)
    """Minute buckets read into `ready`, with how many of their entries are not yet taken."""
    windows: dict[str, CallingWindow] = field(default_factory=dict)
    lane_turn: int = 0
    dirty: bool = False
    urgent: bool = False
    """Must be saved before this apply step's offsets are committed (not only eventually)."""
    saved_at: float = 0.0
    checked_at: float = 0.0
    final_counts: dict[str, int] | None = None
    """Terminal states stored so far by kind (`completed`, `failed`, ...): read from the store once per
    owner, then counted as outcomes are inserted (counting them in the store is a scan of the batch)."""

    @property
    def live(self) -> bool:
        return self.state is not BatchState.COMPLETED

    @property
    def accepts_contacts(self) -> bool:
        """New contacts join the queue; otherwise they are cancelled on arrival."""
        return self.state in (BatchState.ACTIVE, BatchState.PAUSED) and not self.dry_run_done

    @property
    def dry_run_done(self) -> bool:
        return self.dry_run and self.fresh_dispatched > 0

    def dispatchable(self, now: datetime) -> bool:
        return (
            self.known
            and self.agent is not None
            and self.state is BatchState.ACTIVE
            and (self.scheduled_at is None or self.scheduled_at <= now)
        )

    def policy(self) -> RetryPolicy:
        spec = self.retry_spec
        return RetryPolicy.of(spec.max_attempts, spec.gaps_seconds, spec.retry_voicemail)

    def window(self, lane_key: str, now: datetime) -> CallingWindow:
        cached = self.windows.get(lane_key)
        if cached is None:
            spec = self.window_spec or CallingWindowSpec()
            cached = window_for(
                lane_zones(lane_key),
                country_zones=country_zones(lane_key),
                fallback_timezone=spec.fallback_timezone,
                days=spec.days,
                start=spec.start,
                end=spec.end,
                now=now,
            )
            self.windows[lane_key] = cached
        return cached

    def lane_open(self, lane_key: str, now: datetime, lane: Lane | None = None) -> bool:
        """Whether the lane's window is open now; the answer is cached until the window next changes."""
        if lane is not None:
            if lane.open_until is not None and now < lane.open_until:
                return True
            if lane.closed_until is not None and now < lane.closed_until:
                return False
        window = self.window(lane_key, now)
        is_open = window.is_open(now)
        if lane is not None:
            if is_open:
                lane.open_until, lane.closed_until = window.next_close(now), None
            else:
                lane.open_until = None
                lane.closed_until = window.next_open(now) or now + timedelta(hours=1)
        return is_open

    def next_open(self, lane_key: str, now: datetime) -> datetime:
        """When the lane's window opens next (an hour from now if never within the search horizon)."""
        return self.window(lane_key, now).next_open(now) or now + timedelta(hours=1)

    def lane(self, key: str) -> Lane:
        found = self.lanes.get(key)
        if found is None:
            found = self.lanes[key] = Lane(key, len(self.lanes))
        return found

    def queue_drained(self) -> bool:
        """No contact of the batch waits: every lane is taken and no retry is pending."""
        return (
            all(lane.exhausted for lane in self.lanes.values()) and not self.timer_minutes and not self.ready
        )

    # --- persistence shape (plain values only; the store adds nothing else) ----------------------------

    def to_document(self) -> dict[str, Any]:
        return {
            "_id": self.batch_id,
            "workspace_id": self.workspace_id,
            "partition": self.partition,
            "live": self.live,
            "known": self.known,
            "state": self.state.value,
            "agent": self.agent.model_dump(mode="json") if self.agent else None,
            "scheduled_at": self.scheduled_at,
            "window_spec": self.window_spec.model_dump(mode="json") if self.window_spec else None,
            "retry_spec": self.retry_spec.model_dump(mode="json"),
            "dry_run": self.dry_run,
            "total_rows": self.total_rows,
            "ingested_accepted": self.ingested_accepted,
            "ingested_skipped": self.ingested_skipped,
            "started": self.started,
            "fresh_dispatched": self.fresh_dispatched,
            "cancel_swept": self.cancel_swept,
            "lanes": [
                {
                    "key": lane.key,
                    "index": lane.index,
                    "cursor": [lane.cursor_segment, lane.cursor_pos],
                    "tail": [lane.tail_segment, lane.tail_len],
                }
                for lane in self.lanes.values()
            ],
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Batch:
        batch = cls(
            batch_id=doc["_id"],
            workspace_id=doc["workspace_id"],
            partition=int(doc["partition"]),
            known=bool(doc.get("known")),
            state=BatchState(doc.get("state", "active")),
            agent=AgentSnapshot.model_validate(doc["agent"]) if doc.get("agent") else None,
            scheduled_at=doc.get("scheduled_at"),
            window_spec=CallingWindowSpec.model_validate(doc["window_spec"])
            if doc.get("window_spec")
            else None,
            retry_spec=RetryPolicySpec.model_validate(doc.get("retry_spec") or {}),
            dry_run=bool(doc.get("dry_run")),
            total_rows=int(doc.get("total_rows", 0)),
            ingested_accepted=doc.get("ingested_accepted"),
            ingested_skipped=int(doc.get("ingested_skipped", 0)),
            started=bool(doc.get("started")),
            fresh_dispatched=int(doc.get("fresh_dispatched", 0)),
            cancel_swept=bool(doc.get("cancel_swept")),
        )
        for item in doc.get("lanes", []):
            cursor, tail = item["cursor"], item["tail"]
            batch.lanes[item["key"]] = Lane(
                item["key"], int(item["index"]), int(cursor[0]), int(cursor[1]), int(tail[0]), int(tail[1])
            )
        return batch
