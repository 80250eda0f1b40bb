"""Use cases over fakes: publishing order and counts, crash resume, validation, batch commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime

import pytest

from ingest.adapters.record_reader import ThreadedRecordReader
from ingest.adapters.validation_pool import InlinePreparer
from ingest.domain.agents import snapshot
from ingest.domain.batch import BatchRecord, PublishCursor
from ingest.handlers import (
    BatchNotFound,
    CommandRefused,
    IngestDeps,
    cancel_batch,
    pause_batch,
    publish_batch,
    resume_batch,
    validate_upload,
)
from ingest.ports import JudgedRow
from shared.events import (
    BatchAccepted,
    BatchIngested,
    CancelBatch,
    ContactAccepted,
    ContactSkipped,
    PauseBatch,
    ResumeBatch,
)
from shared.outcomes import SkipReason

from .fakes import FakeSink, MemoryBatches, MemoryCursors, MemoryUploads, StaticDnc, StaticProgress

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
CSV = (
    b"phone_number,first_name,plan\n"
    b"+14155550101,Ann,gold\n"  # 1 accepted
    b"not a number,Bob,gold\n"  # 2 invalid
    b"(415) 555-0101,Cy,gold\n"  # 3 duplicate of row 1 (national form, default region US)
    b"+442079460958,Di,silver\n"  # 4 do-not-call
    b"4155550102,Ed,\n"  # 5 accepted (no '+': default region)
    b"+33142685300,Flo,bronze\n"  # 6 accepted
    b"+14155550103,Gus,gold\n"  # 7 accepted
)


def make_deps(sink: FakeSink, *, rows_per_block: int = 2) -> IngestDeps:
    return IngestDeps(
        events=sink,
        preparer=InlinePreparer(),
        uploads=MemoryUploads(),
        reader=ThreadedRecordReader(),
        batches=MemoryBatches(),
        cursors=MemoryCursors(),
        do_not_call=StaticDnc({"+442079460958"}),
        progress=StaticProgress({"completed": 2, "failed": 1}),
        clock=lambda: NOW,
        rows_per_block=rows_per_block,
        blocks_ahead=1,
    )


async def store(deps: IngestDeps, batch_id: str = "batch_1", *, chunk: int = 16) -> BatchRecord:
    chunks = [CSV[i : i + chunk] for i in range(0, len(CSV), chunk)]
    for n, data in enumerate(chunks):
        await deps.uploads.write_chunk(batch_id, n, data)
    batch = BatchRecord(
        batch_id=batch_id,
        workspace_id="ws_1",
        agent=snapshot("agent_1", "A", "Hi {first_name}"),
        total_rows=7,
        upload_bytes=len(CSV),
        upload_chunks=len(chunks),
        default_region="US",
        created_at=NOW,
        dry_run=True,
    )
    await deps.batches.create(batch)
    return batch


async def test_batch_accepted_comes_first_then_every_row_in_order_then_batch_ingested() -> None:
    sink = FakeSink()
    deps = make_deps(sink)
    batch = await store(deps)
    cursor = await publish_batch(deps, batch)
    first, *contacts, last = sink.messages
    assert isinstance(first, BatchAccepted) and first.dry_run and first.agent.variables == ("first_name",)
    assert isinstance(last, BatchIngested)
    assert (last.total_rows, last.accepted, last.skipped) == (7, 4, 3)
    assert [c.row_number for c in contacts] == list(range(1, 8))  # type: ignore[union-attr]
    assert [c.contact_id for c in contacts] == [f"batch_1_r{i}" for i in range(1, 8)]  # type: ignore[union-attr]
    kinds = [(type(c).__name__, getattr(c, "reason", None)) for c in contacts]
    assert kinds == [
        ("ContactAccepted", None),
        ("ContactSkipped", SkipReason.INVALID_NUMBER),
        ("ContactSkipped", SkipReason.DUPLICATE),
        ("ContactSkipped", SkipReason.DO_NOT_CALL),
        ("ContactAccepted", None),
        ("ContactAccepted", None),
        ("ContactAccepted", None),
    ]
    accepted = [c for c in contacts if isinstance(c, ContactAccepted)]
    assert accepted[1].phone_number == "+14155550102"
    assert accepted[1].variables == {"first_name": "Ed", "plan": ""}
    invalid = contacts[1]
    assert isinstance(invalid, ContactSkipped) and invalid.phone_number == "not a number"
    assert cursor.state == "ingested" and cursor.rows_done == 7


async def test_a_crash_resumes_after_the_last_acknowledged_block_without_losing_duplicates() -> None:
    crashing = FakeSink(fail_after_contact_calls=2)  # blocks of 2 rows: rows 1-4 acknowledged, then a crash
    deps = make_deps(crashing)
    batch = await store(deps)
    with pytest.raises(ConnectionError):
        await publish_batch(deps, batch)
    cursor = await deps.cursors.load("batch_1")
    assert cursor is not None and cursor.rows_done == 4 and cursor.accepted_published

    resumed = FakeSink()
    deps.events = resumed
    await publish_batch(deps, batch)
    assert not any(isinstance(m, BatchAccepted) for m in resumed.messages)  # already published
    rows = [
        getattr(m, "row_number", None)
        for m in resumed.messages
        if isinstance(m, ContactAccepted | ContactSkipped)
    ]
    assert rows == [5, 6, 7]
    ingested = resumed.messages[-1]
    assert isinstance(ingested, BatchIngested) and (ingested.accepted, ingested.skipped) == (4, 3)
    every_row = {
        m.row_number
        for m in crashing.messages + resumed.messages
        if isinstance(m, ContactAccepted | ContactSkipped)
    }
    assert every_row == set(range(1, 8))  # nothing lost


class HeldSink(FakeSink):
    """Contact blocks are sent at once and acknowledged only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[asyncio.Future[None]] = []

    async def send_contacts(
        self, batch: BatchRecord, rows: Sequence[JudgedRow], now: datetime
    ) -> Awaitable[None]:
        await super().send_contacts(batch, rows, now)
        self.held.append(asyncio.get_running_loop().create_future())
        return self.held[-1]


async def test_blocks_are_sent_ahead_of_their_acknowledgements_and_the_cursor_follows_only_those() -> None:
    sink = HeldSink()
    deps = make_deps(sink, rows_per_block=1)
    deps.blocks_unacknowledged = 2
    batch = await store(deps)
    publishing = asyncio.create_task(publish_batch(deps, batch))

    async def rows_done() -> int:
        cursor = await deps.cursors.load("batch_1")
        return cursor.rows_done if cursor is not None else 0

    async def settled(sent: int) -> None:
        """Until `sent` blocks went out, and a moment more (the reader runs in a thread)."""
        async with asyncio.timeout(10):
            while len(sink.held) < sent:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)

    await settled(3)
    assert len(sink.held) == 3  # two unacknowledged, and the third sent while the first is awaited
    assert await rows_done() == 0
    sink.held[1].set_result(None)  # a later block's acknowledgement first: the cursor waits for the first
    await asyncio.sleep(0.2)
    assert await rows_done() == 0 and len(sink.held) == 3
    sink.held[0].set_result(None)
    await settled(5)
    assert await rows_done() == 2 and len(sink.held) == 5
    sink.held[2].set_exception(ConnectionError("broker went away"))
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(publishing, 10)  # not waiting for the two blocks still in flight
    assert await rows_done() == 2  # nothing unacknowledged is recorded


async def test_an_ingested_batch_is_not_published_again() -> None:
    sink = FakeSink()
    deps = make_deps(sink)
    batch = await store(deps)
    await publish_batch(deps, batch)
    count = len(sink.messages)
    await publish_batch(deps, batch)
    assert len(sink.messages) == count


async def test_the_bytes_in_hand_are_used_instead_of_the_store() -> None:
    sink = FakeSink()
    deps = make_deps(sink)
    batch = await store(deps)
    await deps.uploads.delete("batch_1")

    async def upload() -> AsyncIterator[bytes]:
        yield CSV

    await publish_batch(deps, batch, upload())
    assert isinstance(sink.messages[-1], BatchIngested)


async def test_validation_reports_counts_errors_preview_and_warnings() -> None:
    deps = make_deps(FakeSink())

    async def chunks() -> AsyncIterator[bytes]:
        yield CSV[:50]
        yield CSV[50:]

    agent = snapshot("agent_1", "A", "Hi {first_name}, about {region}")
    report = await validate_upload(
        deps, chunks(), workspace_id="ws_1", default_region="US", agent=agent, max_records=5, preview_rows=2
    )
    assert report.total_rows == 7 and report.valid_rows == 4
    assert report.counts == {SkipReason.INVALID_NUMBER: 1, SkipReason.DUPLICATE: 1, SkipReason.DO_NOT_CALL: 1}
    assert [(e.row, e.line, e.code, e.value) for e in report.errors] == [
        (2, 3, "invalid_number", "not a number"),
        (3, 4, "duplicate", "(415) 555-0101"),
        (4, 5, "do_not_call", "+442079460958"),
    ]
    assert [p[:2] for p in report.preview] == [(1, "+14155550101"), (5, "+14155550102")]
    assert any("region" in w for w in report.warnings)
    assert any("plan allows 5" in w for w in report.warnings)
    assert not deps.uploads.stored  # type: ignore[attr-defined]


async def test_commands_publish_and_respect_the_lifecycle() -> None:
    sink = FakeSink()
    deps = make_deps(sink)
    await store(deps)
    await pause_batch(deps, "ws_1", "batch_1")
    await resume_batch(deps, "ws_1", "batch_1")
    batch, counts = await cancel_batch(deps, "ws_1", "batch_1")
    assert counts == {"completed": 2, "failed": 1} and batch.total_rows == 7
    assert [type(m) for m in sink.messages] == [PauseBatch, ResumeBatch, CancelBatch]
    with pytest.raises(CommandRefused):
        await resume_batch(deps, "ws_1", "batch_1")
    with pytest.raises(CommandRefused):
        await pause_batch(deps, "ws_1", "batch_1")
    await cancel_batch(deps, "ws_1", "batch_1")  # cancelling again is harmless


async def test_another_workspace_sees_no_batch() -> None:
    deps = make_deps(FakeSink())
    await store(deps)
    for command in (pause_batch, resume_batch):
        with pytest.raises(BatchNotFound):
            await command(deps, "ws_other", "batch_1")
    with pytest.raises(BatchNotFound):
        await cancel_batch(deps, "ws_other", "batch_1")


async def test_stale_cursor_is_found_for_resume() -> None:
    from ingest.handlers import stale_batches

    deps = make_deps(FakeSink())
    await store(deps)
    await deps.cursors.save(PublishCursor(batch_id="batch_1", workspace_id="ws_1", updated_at=NOW))
    assert [b.batch_id for b in await stale_batches(deps, 0)] == ["batch_1"]
    assert await stale_batches(deps, 60) == []
