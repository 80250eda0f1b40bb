"""Following a batch until it is done: the live event stream when the server offers one, polling otherwise.

The stream is read on a background thread into a queue; the main thread turns events into progress. A
progress event carries its counts; any other event only marks the numbers stale, and they are re-read at
most once per `poll_seconds` so a busy batch never spends the plan's request budget.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from batchcalls_cli.client import ApiFailure, BatchCallsClient, Unreachable
from batchcalls_cli.progress import BatchProgress
from batchcalls_cli.sse import ServerSentEvent

FINAL_EVENT_TYPES = frozenset({"batch.completed", "batch.cancelled", "batch.failed", "end", "done"})


@dataclass(frozen=True)
class _StreamItem:
    event: ServerSentEvent | None = None
    error: Exception | None = None
    closed: bool = False


class BatchFollower:
    """Iterating yields the batch's progress each time it changes, and stops after the final one."""

    def __init__(
        self,
        client: BatchCallsClient,
        batch_id: str,
        *,
        poll_seconds: float = 2.0,
        use_stream: bool = True,
        appear_within_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._batch_id = batch_id
        self._poll_seconds = poll_seconds
        self._use_stream = use_stream
        self._sleep = sleep
        self._clock = clock
        self._queue: queue.Queue[_StreamItem] = queue.Queue()
        self._last_fetch = float("-inf")
        self._appear_within = appear_within_seconds
        self._seen = False
        self.transport = "polling"
        """How progress arrived: `stream` while the event stream is healthy, else `polling`."""

    def _fetch(self) -> BatchProgress:
        started = self._clock()
        while True:
            try:
                body = self._client.batch_status(self._batch_id)
            except ApiFailure as failure:
                if failure.status == 429:
                    self._sleep(float(failure.retry_after or 5))
                    continue
                # The status read model follows the event log: a batch that was just accepted can take a
                # moment to appear there, so a 404 before it was ever seen is waited out, for a while.
                if failure.status == 404 and not self._seen and self._clock() - started < self._appear_within:
                    self._sleep(self._poll_seconds)
                    continue
                raise
            self._seen = True
            self._last_fetch = self._clock()
            progress = BatchProgress.from_body(body, self._batch_id)
            if progress is None:
                raise ApiFailure(500, "bad_response", "the status response carries no progress counts")
            return progress

    def _read_stream(self, stream_client: BatchCallsClient) -> None:
        last_id: str | None = None
        try:
            for event in stream_client.events(self._batch_id, last_id):
                last_id = event.id or last_id
                self._queue.put(_StreamItem(event=event))
        except (ApiFailure, Unreachable) as exc:
            self._queue.put(_StreamItem(error=exc))
        except Exception as exc:  # the stream thread must always report, never die silently
            self._queue.put(_StreamItem(error=exc))
        else:
            self._queue.put(_StreamItem(closed=True))

    def __iter__(self) -> Iterator[BatchProgress]:
        current = self._fetch()
        yield current
        if current.finished:
            return
        stream_client: BatchCallsClient | None = None
        if self._use_stream:
            stream_client = self._client.sibling()
            threading.Thread(target=self._read_stream, args=(stream_client,), daemon=True).start()
            self.transport = "stream"
        try:
            yield from self._follow(current)
        finally:
            if stream_client is not None:
                stream_client.close()

    def _follow(self, current: BatchProgress) -> Iterator[BatchProgress]:
        stale = False
        while True:
            streaming = self.transport == "stream"
            # With a healthy stream, polling is only a safety net against a missed event.
            wait = self._poll_seconds * (5 if streaming else 1)
            if stale:
                wait = max(0.0, self._poll_seconds - (self._clock() - self._last_fetch))
            try:
                item: _StreamItem | None = self._queue.get(timeout=wait) if streaming else None
            except queue.Empty:
                item = None
            if item is None and not streaming:
                self._sleep(wait)
            latest: BatchProgress | None = None
            final = False
            if item is not None and item.event is not None:
                latest, final = self._from_event(item.event)
                stale = stale or latest is None
            elif item is not None:
                self.transport = "polling"  # the stream failed or closed: fall back, don't give up
                stale = True
            else:
                stale = True
            due = self._clock() - self._last_fetch >= self._poll_seconds
            if final or (stale and due) or (latest is not None and latest.finished):
                latest = self._fetch()
                stale = False
            if latest is not None and latest.total == 0:
                latest = replace(latest, total=current.total)  # a progress event may omit the total
            if latest is not None and latest.done < current.done and not latest.finished:
                # Stream events and status reads can arrive out of order; never show progress going back.
                latest = None
            if latest is not None and latest != current:
                current = latest
                yield current
            if current.finished:
                return

    def _from_event(self, event: ServerSentEvent) -> tuple[BatchProgress | None, bool]:
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        kind = event.event
        if isinstance(data, dict):
            kind = str(data.get("type") or data.get("event") or kind)
            progress = BatchProgress.from_body(data, self._batch_id)
            if progress is None and isinstance(data.get("data"), dict):
                progress = BatchProgress.from_body(data["data"], self._batch_id)
        else:
            progress = None
        return progress, kind in FINAL_EVENT_TYPES
