"""One call's spans from all four services share one trace: the caller's `traceparent` on the upload
flows through Kafka headers (and the dispatcher's waiting queue) into the dialer and status."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.ops.conftest import SERVICES, DrivenBatch, OtlpCollector, RunningServices

pytestmark = pytest.mark.integration


async def test_spans_of_every_service_join_the_upload_trace(
    services: RunningServices, batch: DrivenBatch, collector: OtlpCollector
) -> None:
    trace_id = batch.upload_traceparent.split("-")[1]
    wanted = {f"batchcalls-{s}" for s in SERVICES}

    async def joined() -> set[str]:
        # Spans are exported in batches every 200 ms; wait until all four services have reported.
        while True:
            seen = {s.service for s in collector.snapshot() if s.trace_id == trace_id}
            if seen >= wanted:
                return seen
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(joined(), 60)
    except TimeoutError:
        in_trace = sorted({(s.service, s.name) for s in collector.snapshot() if s.trace_id == trace_id})
        services_seen = sorted({s.service for s in collector.snapshot()})
        raise AssertionError(
            f"trace {trace_id}: spans {in_trace}; services exporting any span: {services_seen}; "
            f"missing from the trace: {sorted(wanted - {svc for svc, _ in in_trace})}"
        ) from None
    spans = [s for s in collector.snapshot() if s.trace_id == trace_id]
    by_id = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id not in by_id]
    # Everything hangs off the caller's span (outside our services), never off a fresh root.
    assert {s.parent_span_id for s in roots} == {batch.upload_traceparent.split("-")[2]}
