"""The live stream of a batch (Server-Sent Events), read from the batch's append-only feed.

Each feed entry is one event whose `id:` is its sequence number, so a client that reconnects with
`Last-Event-ID: n` gets every entry after `n`. A client that connects without one gets the current numbers
(a `progress` event) and then what follows. The stream ends after the batch is complete and every entry has
been sent; keep-alive comments flow while it is quiet.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from status.domain.batches import BatchView
from status.domain.notifications import progress_item
from status.ports import FEED_PAGE, FeedEntry

FeedReader = Callable[[str, int], Awaitable[list[FeedEntry]]]
BatchReader = Callable[[], Awaitable[BatchView | None]]


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


async def stream(
    batch: BatchView,
    last_event_id: int | None,
    read_feed: FeedReader,
    read_batch: BatchReader,
    disconnected: Callable[[], Awaitable[bool]],
    *,
    poll_seconds: float,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    """The event frames of one client's stream."""
    yield b"retry: 2000\n\n"
    if last_event_id is None:
        last = batch.feed_seq
        snapshot = progress_item(batch)
        yield frame(snapshot.kind, snapshot.data, last)
    else:
        last = max(0, last_event_id)
    quiet_since = time.monotonic()
    while True:
        sent = False
        for entry in await read_feed(batch.batch_id, last // FEED_PAGE):
            if entry.seq <= last:
                continue
            if entry.seq != last + 1:
                break  # the next entry is not written yet; never skip one
            yield frame(entry.kind, entry.data, entry.seq)
            last, sent = entry.seq, True
        if sent:
            quiet_since = time.monotonic()
            continue
        current = await read_batch()
        if current is None:
            return
        if current.is_complete and last >= current.feed_seq:
            yield frame("end", {"batchId": current.batch_id, "status": current.status.value}, None)
            return
        if await disconnected():
            return
        if time.monotonic() - quiet_since >= heartbeat_seconds:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(poll_seconds)
