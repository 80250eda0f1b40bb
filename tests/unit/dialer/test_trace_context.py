"""Each call runs in one span that continues its request's trace; the call's events carry that span on."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.events import Message
from shared.telemetry import inject_headers

from .fakes import FakeEvents, ScriptedProvider, request
from .test_handlers import make_dialer

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEADERS = [("traceparent", f"00-{TRACE}-{PARENT}-01".encode())]


class TracedEvents(FakeEvents):
    """Records the trace context each event would be published with (the Kafka sink reads it at emit)."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []

    def emit(self, event: Message) -> None:
        self.headers.append(inject_headers())
        super().emit(event)

    def emit_confirmed(self, event: Message) -> asyncio.Future[None]:
        self.headers.append(inject_headers())
        return super().emit_confirmed(event)


async def test_a_call_and_its_events_continue_the_request_trace(spans: InMemorySpanExporter) -> None:
    spans.clear()
    events = TracedEvents()
    dialer, _, _ = make_dialer(ScriptedProvider(ring=True, answer=True), events=events)
    await asyncio.gather(*await dialer.handle([request(), request(row=2)], [HEADERS, None]))
    placed = [s for s in spans.get_finished_spans() if s.name == "dialer place call"]
    assert len(placed) == 2
    (traced,) = [s for s in placed if s.parent is not None]
    assert format(traced.context.trace_id, "032x") == TRACE
    assert format(traced.parent.span_id, "016x") == PARENT  # type: ignore[union-attr]
    assert traced.attributes == {
        "batch_id": "batch_abc",
        "attempt_id": "batch_abc_r1_a1",
        "attempt_number": 1,
    }
    mine = format(traced.context.span_id, "016x")
    of_first = [h for e, h in zip(events.sent, events.headers, strict=True) if e.contact_id == "batch_abc_r1"]  # type: ignore[attr-defined]
    assert len(of_first) == 4  # started, ringing, answered, ended
    assert {h["traceparent"].split("-")[2] for h in of_first} == {mine}


async def test_a_re_emitted_end_continues_the_redelivered_request_trace(spans: InMemorySpanExporter) -> None:
    events = TracedEvents()
    dialer, _, _ = make_dialer(ScriptedProvider(), events=events)
    await asyncio.gather(*await dialer.handle([request()]))
    spans.clear()
    await asyncio.gather(*await dialer.handle([request()], [HEADERS]))
    (again,) = spans.get_finished_spans()
    assert again.name == "dialer re-emit call end"
    assert events.headers[-1]["traceparent"].split("-")[1:3] == [TRACE, format(again.context.span_id, "016x")]
