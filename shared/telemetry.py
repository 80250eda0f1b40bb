"""Structured JSON logs and OpenTelemetry tracing, set up once per process by a service's bootstrap."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, Span, SpanKind

from shared.settings import InfraSettings

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become top-level keys; the active trace id is attached."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, infra: InfraSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if infra.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(infra.log_level)
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def configure_tracing(service: str, infra: InfraSettings) -> TracerProvider:
    """Install the service's tracer provider. With no exporter, spans are not recorded at all (ParentBased
    on ALWAYS_OFF): ids are still made and propagated, so logs carry trace ids and Kafka headers carry
    `traceparent`, but no span objects are built for nobody (a third of the dialer's per-call CPU went to
    spans that were never exported). A deployment traces with an exporter on every service: a span dropped
    upstream is not sampled downstream either."""
    exporter = _exporter(infra)
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"batchcalls-{service}"}),
        sampler=None if exporter is not None else ParentBased(ALWAYS_OFF),
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(infra: InfraSettings) -> SpanExporter | None:
    if infra.otel_exporter == "console":
        return ConsoleSpanExporter()
    if infra.otel_exporter == "otlp":
        # Imported lazily: only deployments with a collector pay for it. With no BC_OTEL_ENDPOINT the exporter
        # reads the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT / _HEADERS / _TIMEOUT variables itself.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = f"{infra.otel_endpoint.rstrip('/')}/v1/traces" if infra.otel_endpoint else None
        exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint)
        return exporter
    return None


def inject_headers() -> dict[str, str]:
    """W3C trace context of the current span, for Kafka message headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> Any:
    return propagate.extract(dict(headers))


_TRACER = trace.get_tracer("batchcalls")
"""One tracer for every consumer span (a proxy until `configure_tracing` installs the provider): looking it
up per span costs more than the span when the dispatcher opens one per call request."""

KafkaHeaders = Mapping[str, str | bytes] | Sequence[tuple[str, bytes | None]] | None
"""Message headers as aiokafka (a list of pairs) or faststream (a mapping) hands them to a consumer."""


def _carrier(headers: KafkaHeaders) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    carrier: dict[str, str] = {}
    for key, value in items:
        if value is None:
            continue
        carrier[key.lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return carrier


def traceparent_of(headers: KafkaHeaders, decoded: dict[bytes, str] | None = None) -> str:
    """The W3C `traceparent` in a record's headers, "" without one. `decoded` caches the text per raw value,
    so the many records of one trace (an upload's contacts) share one string."""
    if isinstance(headers, Mapping):
        headers = list(headers.items())  # type: ignore[arg-type]
    for key, value in headers or ():
        if value and key.lower() == "traceparent":
            if isinstance(value, str):
                return value
            text = decoded.get(value) if decoded is not None else None
            if text is None:
                text = value.decode("latin-1")
                if decoded is not None:
                    decoded[value] = text
            return text
    return ""


@contextmanager
def consumer_span(
    name: str, headers: KafkaHeaders, links: Sequence[KafkaHeaders] = (), /, **attributes: str | int
) -> Iterator[Span]:
    """A CONSUMER span, child of the producer's trace context in `headers`, current while handling one
    message; events published inside it carry the same trace on (`inject_headers`).

    `headers` may also be a carrier saved earlier with `inject_headers()` (e.g. stored with a waiting
    contact), which continues the upload's trace when the work happens later. `links` are the contexts of
    further messages handled in the same span (a projector's chunk). Attributes must stay free of phone
    numbers and prompt variables.
    """
    linked = [
        Link(context)
        for context in (
            trace.get_current_span(extract_context(_carrier(h))).get_span_context() for h in links
        )
        if context.is_valid
    ]
    with _TRACER.start_as_current_span(
        name,
        context=extract_context(_carrier(headers)),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=linked,
    ) as span:
        yield span
