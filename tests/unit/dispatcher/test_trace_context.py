"""The dispatcher carries each contact's trace through its waiting queue: the call request dialed later, the
retry after a failed attempt and the terminal event all continue the trace their cause arrived in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dispatcher.adapters.mongo_store import (
    entry_doc,
    entry_of,
    pack,
    segment_docs,
    segment_entries,
    stored_segment,
    timer_doc,
    timer_entry,
)
from dispatcher.domain.batch import QueuedContact
from dispatcher.domain.lease import Lease
from shared.events import CallEnded, CallRequested, ContactFinished, Message, RetryPolicySpec, RetryScheduled
from shared.outcomes import Outcome
from tests.unit.dispatcher.test_handlers import World

pytestmark = pytest.mark.unit

UPLOAD_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPLOAD_SPAN = "00f067aa0ba902b7"
UPLOAD = f"00-{UPLOAD_TRACE}-{UPLOAD_SPAN}-01"
CALL_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALL_SPAN = "b7ad6b7169203331"
CALL = f"00-{CALL_TRACE}-{CALL_SPAN}-01"


def ids(span: ReadableSpan) -> tuple[str, str, str]:
    """(trace id, span id, parent span id) in hex."""
    assert span.context is not None
    parent = format(span.parent.span_id, "016x") if span.parent is not None else ""
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"), parent


def traced(messages: list[Message], traceparent: str) -> dict[object, str]:
    return {m.event_id: traceparent for m in messages}


def parts(carrier: dict[str, str]) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C carrier."""
    _, trace_id, span_id, _ = carrier["traceparent"].split("-")
    return trace_id, span_id


async def test_call_request_continues_the_trace_the_contact_arrived_in(spans: InMemorySpanExporter) -> None:
    spans.clear()
    w = World()
    await w.start()
    contacts = w.contacts("batch_a", range(1, 3))
    await w.dispatcher.apply(
        [(0, w.accepted("batch_a", 2)), *((0, c) for c in contacts)], traced(contacts, UPLOAD)
    )
    await w.rounds(1)
    requests = w.requests()
    assert len(requests) == 2
    (dial,) = [s for s in spans.get_finished_spans() if s.name == "dispatcher dispatch"]
    assert ids(dial)[0] == UPLOAD_TRACE and ids(dial)[2] == UPLOAD_SPAN  # child of the upload's span
    assert dial.attributes == {"batch_id": "batch_a", "requests": 2}  # one span for the round's two
    for request in requests:
        trace_id, parent = parts(w.sink.carriers[request.event_id])
        assert (trace_id, parent) == (UPLOAD_TRACE, ids(dial)[1])


async def test_untraced_contacts_start_no_spans_and_publish_with_the_current_context(
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    w = World()
    await w.start()
    await w.apply(w.accepted("batch_a", 2), *w.contacts("batch_a", range(1, 3)))
    await w.rounds(1)
    assert len(w.requests()) == 2
    assert w.sink.carriers == {}
    assert [s.name for s in spans.get_finished_spans()] == []


async def test_retry_and_finish_continue_the_trace_of_the_call_that_ended(
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    w = World()
    await w.start()
    contacts = w.contacts("batch_a", range(1, 2))
    policy = RetryPolicySpec(max_attempts=2, gaps_seconds=(60,))
    await w.dispatcher.apply(
        [(0, w.accepted("batch_a", 1, retry_policy=policy)), (0, contacts[0]), (0, w.ingested("batch_a", 1))],
        traced(contacts, UPLOAD),
    )
    await w.rounds(1)
    busy: CallEnded = w.ended(w.requests()[0], Outcome.BUSY)
    await w.dispatcher.apply([(0, busy)], traced([busy], CALL))
    (ended_span,) = [s for s in spans.get_finished_spans() if s.name == "dispatcher call ended"]
    assert ids(ended_span)[0] == CALL_TRACE and ids(ended_span)[2] == CALL_SPAN
    (retry,) = w.sink.of(RetryScheduled)
    assert parts(w.sink.carriers[retry.event_id]) == (CALL_TRACE, ids(ended_span)[1])

    w.clock.advance(61)
    await w.rounds(1)
    second = w.requests()[1]
    assert second.attempt_number == 2
    # The retry waited in a timer bucket; its dial continues the trace of the attempt that asked for it.
    assert parts(w.sink.carriers[second.event_id])[0] == CALL_TRACE

    no_answer = w.ended(second, Outcome.NO_ANSWER)
    await w.dispatcher.apply([(0, no_answer)])  # arrived without headers: the attempt's own trace is kept
    (finished,) = w.sink.of(ContactFinished)
    assert parts(w.sink.carriers[finished.event_id])[0] == CALL_TRACE


async def test_a_new_owner_dials_waiting_contacts_in_their_trace(spans: InMemorySpanExporter) -> None:
    spans.clear()
    w = World(concurrent=1)
    await w.start()
    contacts = w.contacts("batch_a", range(1, 3))
    await w.dispatcher.apply(
        [(0, w.accepted("batch_a", 2)), *((0, c) for c in contacts)], traced(contacts, UPLOAD)
    )
    w.dispatcher = w.new_dispatcher()  # a crash: the queue is only in the store
    await w.start()
    await w.rounds(1)
    (request,) = [r for r in w.requests() if isinstance(r, CallRequested)]
    assert parts(w.sink.carriers[request.event_id])[0] == UPLOAD_TRACE


def test_stored_entries_and_leases_keep_the_traceparent_and_read_old_documents() -> None:
    contact = QueuedContact("c1", "batch_a", 1, "+12125550001", {"first_name": "Ada"}, "US", trace=UPLOAD)
    assert entry_of("batch_a", entry_doc(contact)) == contact
    untraced = QueuedContact("c2", "batch_a", 2, "+12125550002", {}, "US")
    assert "t" not in entry_doc(untraced)  # nothing stored for untraced work
    assert entry_of("batch_a", entry_doc(untraced)) == untraced

    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    lease = Lease("c1_a1", "ws_a", 0, contact, now, now + timedelta(minutes=5))
    assert Lease.from_document(lease.to_document()) == lease
    # Stored one document per lease, before books (ADR 0025), and before traces were kept: no `traceparent`.
    old = {k: v for k, v in lease.to_document().items() if k != "contact"}
    old |= {
        "contact_id": "c1",
        "row_number": 1,
        "phone_number": "+12125550001",
        "variables": [{"k": "first_name", "v": "Ada"}],
        "lane": "US",
        "attempt_number": 1,
        "previous": [],
    }
    assert Lease.from_document(old) == replace(lease, contact=replace(contact, trace=""))


def test_packed_entries_read_back_with_the_unpacked_ones_written_before() -> None:
    odd = {"a.b": "x\x00y", "$k": "é"}  # keys MongoDB refuses, a NUL byte: all fine packed
    contacts = [
        QueuedContact(f"c{n}", "batch_a", n, f"+1212555{n:04d}", odd, "US", trace=UPLOAD) for n in (1, 2)
    ]
    packed = {"_id": "s", "e": segment_docs(contacts[:1]), "b": [pack(segment_docs(contacts[1:]))]}
    assert segment_entries("batch_a", stored_segment(packed)) == contacts
    due = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert timer_entry("batch_a", timer_doc(contacts[0], due)) == contacts[0]
    unpacked = {"_id": "c1_a1", **entry_doc(contacts[0]), "due": due}  # a timer written before ADR 0025
    assert timer_entry("batch_a", unpacked) == contacts[0]


def test_a_segment_stores_the_traceparent_where_it_changes() -> None:
    def contact(n: int, trace: str) -> QueuedContact:
        return QueuedContact(f"c{n}", "batch_a", n, f"+1212555{n:04d}", {}, "US", trace=trace)

    first = [contact(1, UPLOAD), contact(2, UPLOAD), contact(3, UPLOAD)]
    second = [contact(4, ""), contact(5, CALL), contact(6, CALL)]  # a later append to the same segment
    stored = segment_docs(first) + segment_docs(second)
    assert [d.get("t") for d in stored] == [UPLOAD, None, None, "", CALL, None]
    assert segment_entries("batch_a", stored) == first + second
    old = [entry_doc(c, with_trace=False) for c in first]  # a segment written before traces were kept
    assert [c.trace for c in segment_entries("batch_a", old)] == ["", "", ""]
