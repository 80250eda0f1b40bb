"""The projector as a running task: poll every topic, project, commit — with metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from status.domain.clock import epoch_ms
from status.handlers import ChunkSummary, Projector
from status.ports import Record

EVENTS = Counter("batchcalls_status_events_projected_total", "Events projected, by message type.", ["type"])
CHUNK_SECONDS = Histogram(
    "batchcalls_status_chunk_seconds",
    "Time to project and write one chunk.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG_SECONDS = Gauge(
    "batchcalls_status_projection_lag_seconds", "Age of the newest event in the last projected chunk."
)
WRITES = Counter("batchcalls_status_documents_written_total", "Documents written, by kind.", ["kind"])


class MeasuredProjector:
    """Wraps the projector's use case with Prometheus metrics."""

    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    def forget(self) -> None:
        self._projector.forget()

    async def project(self, records: Sequence[Record]) -> ChunkSummary:
        started = time.perf_counter()
        summary = await self._projector.project(records)
        CHUNK_SECONDS.observe(time.perf_counter() - started)
        counts: dict[str, int] = {}
        newest = 0
        for record in records:
            kind: str = record.message.type
            counts[kind] = counts.get(kind, 0) + 1
            newest = max(newest, epoch_ms(record.message.occurred_at))
        for kind, n in counts.items():
            EVENTS.labels(kind).inc(n)
        if newest:
            LAG_SECONDS.set(max(0.0, time.time() - newest / 1000))
        WRITES.labels("batch").inc(summary.batches_written)
        WRITES.labels("call").inc(summary.calls_written)
        WRITES.labels("feed").inc(summary.feed_entries)
        WRITES.labels("outbox").inc(summary.outbox_items)
        return summary
