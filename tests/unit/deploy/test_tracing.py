"""Trace context flows HTTP → Kafka headers → consumer: the shared helpers every service uses.

FastAPI (0.163+) opens a SERVER span per request that continues the caller's `traceparent`; whatever is
published while a request is handled carries it (`shared.telemetry.inject_headers`, used by every
publisher); a consumer's `consumer_span` continues it from the message headers, in aiokafka's and
faststream's header shapes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.http import install_common_routes
from shared.telemetry import consumer_span, inject_headers, traceparent_of

pytestmark = pytest.mark.unit

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans recorded in memory, whether or not another test already installed the global provider."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


async def test_http_request_continues_the_callers_trace_into_kafka_headers(
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    app = FastAPI()
    install_common_routes(app, "trace-probe", [])
    published: list[dict[str, str]] = []

    @app.post("/v1/batch-calls")
    async def start() -> dict[str, str]:
        published.append(inject_headers())  # what a publisher puts in the Kafka headers
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        await client.post("/v1/batch-calls", headers={"traceparent": TRACEPARENT})
        await client.get("/healthz", headers={"traceparent": TRACEPARENT})

    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER and s.name == "POST /v1/batch-calls"]
    assert trace_id(server) == CALLER_TRACE
    assert server.attributes is not None and server.attributes["http.route"] == "/v1/batch-calls"
    (headers,) = published
    assert headers["traceparent"].split("-")[1] == CALLER_TRACE
    in_request = {format(s.context.span_id, "016x") for s in finished if trace_id(s) == CALLER_TRACE}
    assert headers["traceparent"].split("-")[2] in in_request


@pytest.mark.parametrize(
    "shape",
    [
        lambda tp: [("traceparent", tp.encode()), ("other", b"x")],  # aiokafka ConsumerRecord.headers
        lambda tp: {"traceparent": tp},  # faststream's message.headers
        lambda tp: {"traceparent": tp.encode()},
    ],
)
def test_consumer_span_continues_the_trace_from_message_headers(spans: InMemorySpanExporter, shape) -> None:  # type: ignore[no-untyped-def]
    spans.clear()
    with consumer_span("dispatcher handle contacts", shape(TRACEPARENT), topic="contacts") as span:
        onward = inject_headers()
    assert format(span.get_span_context().trace_id, "032x") == CALLER_TRACE
    assert onward["traceparent"].split("-")[1] == CALLER_TRACE
    (finished,) = spans.get_finished_spans()
    assert finished.kind is SpanKind.CONSUMER
    assert finished.parent is not None and format(finished.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_consumer_span_without_context_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    spans.clear()
    with consumer_span("dialer place call", None) as span:
        pass
    assert span.get_span_context().trace_id != int(CALLER_TRACE, 16)
    (finished,) = spans.get_finished_spans()
    assert finished.parent is None


def test_a_saved_carrier_resumes_the_trace_later(spans: InMemorySpanExporter) -> None:
    """The dispatcher stores `inject_headers()` with a waiting contact and dials it minutes later."""
    with consumer_span("dispatcher accept contact", [("traceparent", TRACEPARENT.encode())]):
        saved = inject_headers()
    spans.clear()
    with consumer_span("dispatcher dispatch", saved):
        request_headers = inject_headers()
    assert request_headers["traceparent"].split("-")[1] == CALLER_TRACE


@pytest.mark.parametrize(
    "headers",
    [
        [("other", b"x"), ("traceparent", TRACEPARENT.encode())],
        [("TraceParent", TRACEPARENT.encode())],
        {"traceparent": TRACEPARENT},
    ],
)
def test_traceparent_of_reads_a_records_headers(headers) -> None:  # type: ignore[no-untyped-def]
    decoded: dict[bytes, str] = {}
    first = traceparent_of(headers, decoded)
    assert first == TRACEPARENT
    assert traceparent_of(headers, decoded) is first  # one string shared, not decoded again
    assert traceparent_of(None) == traceparent_of([("other", b"x")]) == ""


def test_consumer_span_links_further_messages_it_handles(spans: InMemorySpanExporter) -> None:
    spans.clear()
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with consumer_span("status project events", {"traceparent": TRACEPARENT}, [{"traceparent": other}, None]):
        pass
    (finished,) = spans.get_finished_spans()
    assert [format(link.context.span_id, "016x") for link in finished.links] == ["b7ad6b7169203331"]
