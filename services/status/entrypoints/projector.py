"""The projector as a running task: poll every topic, project, commit — with metrics and trace spans."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from prometheus_client import Counter, Gauge, Histogram

from shared.telemetry import consumer_span
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

MAX_LINKS = 32
"""Links per span to further events of the same trace in a chunk (the span counts them all)."""


@contextmanager
def chunk_spans(records: Sequence[Record]) -> Iterator[None]:
    """One CONSUMER span per trace among the chunk's events, open while the chunk is projected: child of the
    first event of that trace, linked to the next ones.

    Not a span per event: a chunk holds up to 50,000 events, written together, and a span each would cost
    more than projecting them. The events of one chunk belong to a few traces (an upload's contacts and
    calls share the upload's trace), so this is a handful of spans per chunk, and each trace still shows
    status projecting its events.
    """
    by_trace: dict[str, dict[str, None]] = {}
    counts: dict[str, int] = {}
    for record in records:
        if record.trace:
            trace_id = record.trace[3:35]  # version-traceid-parentid-flags
            by_trace.setdefault(trace_id, {})[record.trace] = None
            counts[trace_id] = counts.get(trace_id, 0) + 1
    with ExitStack() as spans:
        for trace_id, parents in by_trace.items():
            first, *others = [{"traceparent": p} for p in parents]
            spans.enter_context(
                consumer_span("status project events", first, others[:MAX_LINKS], events=counts[trace_id])
            )
        yield


class MeasuredProjector:
    """Wraps the projector's use case with Prometheus metrics and a span per trace in each chunk."""

    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    def forget(self) -> None:
        self._projector.forget()

    def send_notices_from(self, at_ms: int) -> None:
        self._projector.send_notices_from(at_ms)

    async def project(self, records: Sequence[Record]) -> ChunkSummary:
        started = time.perf_counter()
        with chunk_spans(records):
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
