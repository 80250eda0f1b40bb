"""Status projects a chunk in one span per trace among its events: each trace shows its events projected,
at a handful of spans per chunk rather than one per event."""

from __future__ import annotations

from dataclasses import replace

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from status.entrypoints.projector import MAX_LINKS, MeasuredProjector, chunk_spans
from status.handlers import Projector
from tests.unit.status.fakes import MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import history

pytestmark = pytest.mark.unit

UPLOAD = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"


def traceparent(trace_id: str, n: int) -> str:
    return f"00-{trace_id}-{n + 1:016x}-01"


async def test_one_span_per_trace_in_a_chunk_child_of_its_first_event(spans: InMemorySpanExporter) -> None:
    spans.clear()
    records = history(1, rows=6).records()
    # Most events in the upload's trace (each from its own producer span), two in another, the rest untraced.
    chunk = [replace(r, trace=traceparent(UPLOAD, i)) for i, r in enumerate(records[:-3])]
    chunk += [replace(r, trace=traceparent(OTHER, i)) for i, r in enumerate(records[-3:-1])]
    chunk += records[-1:]
    store = MemoryReadModels()
    await MeasuredProjector(Projector(store, StaticRoutes([]), now_ms=lambda: 0)).project(chunk)

    finished = spans.get_finished_spans()
    assert {s.name for s in finished} == {"status project events"}
    by_trace = {format(s.context.trace_id, "032x"): s for s in finished}
    assert sorted(by_trace) == sorted([UPLOAD, OTHER])
    upload = by_trace[UPLOAD]
    assert upload.parent is not None and upload.parent.span_id == 1  # the first event's producer span
    assert upload.attributes == {"events": len(records) - 3}
    assert [link.context.span_id for link in upload.links] == list(
        range(2, min(len(records) - 3, MAX_LINKS + 1) + 1)
    )
    other = by_trace[OTHER]
    assert other.parent is not None and other.parent.span_id == 1
    assert [link.context.span_id for link in other.links] == [2]


def test_an_untraced_chunk_starts_no_span(spans: InMemorySpanExporter) -> None:
    spans.clear()
    with chunk_spans(history(2, rows=3).records()):
        pass
    assert spans.get_finished_spans() == ()
