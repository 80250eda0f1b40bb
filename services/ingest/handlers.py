"""The ingest use cases, over ports: accept a batch, publish its contacts (resumably), validate an upload,
and the batch commands. Plain async functions; `bootstrap` wires the real adapters, tests wire fakes."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from ingest.domain.agents import uncovered_variables
from ingest.domain.batch import BatchRecord, PublishCursor
from ingest.domain.csv_layout import Header
from ingest.domain.verdicts import RowJudge
from ingest.ports import (
    BatchProgress,
    BatchStore,
    ContactContext,
    ContactRow,
    CursorStore,
    DoNotCallNumbers,
    EventSink,
    JudgedRow,
    PreparedRows,
    RecordBlock,
    RecordReader,
    RowPreparer,
    UploadStore,
)
from shared.events import AgentSnapshot, CancelBatch, PauseBatch, ResumeBatch
from shared.outcomes import SkipReason

log = logging.getLogger(__name__)


@dataclass
class IngestDeps:
    """What the use cases need; built once by `bootstrap`."""

    events: EventSink
    preparer: RowPreparer
    uploads: UploadStore
    reader: RecordReader
    batches: BatchStore
    cursors: CursorStore
    do_not_call: DoNotCallNumbers
    progress: BatchProgress
    clock: Callable[[], datetime]
    rows_per_block: int = 2_000
    blocks_ahead: int = 3
    blocks_unacknowledged: int = 4


class CommandRefused(Exception):
    """A batch command that the batch's state does not allow (HTTP 409)."""


class BatchNotFound(Exception):
    """No such batch in the caller's workspace (HTTP 404)."""


# --- publishing a batch's contacts -------------------------------------------------------------------------


async def _prepared_blocks(
    deps: IngestDeps, blocks: AsyncIterator[RecordBlock], context: ContactContext
) -> AsyncIterator[tuple[RecordBlock, PreparedRows]]:
    """Each block with its numbers normalised; up to `blocks_ahead` blocks are in the workers at once."""
    pending: deque[tuple[RecordBlock, asyncio.Future[PreparedRows]]] = deque()
    try:
        async for block in blocks:
            pending.append((block, asyncio.ensure_future(deps.preparer.prepare(block, context))))
            if len(pending) > deps.blocks_ahead:
                done, future = pending.popleft()
                yield done, await future
        while pending:
            done, future = pending.popleft()
            yield done, await future
    finally:
        for _, future in pending:
            future.cancel()


class _CursorWrites:
    """Cursor writes beside the publishing: each block's write runs while the next block is published,
    one at a time and in order (the cursor has a single writer), so a slow database write does not stall
    the pipeline. A write only ever records rows Kafka has acknowledged."""

    def __init__(self, store: CursorStore) -> None:
        self._store = store
        self._last: asyncio.Future[None] | None = None

    async def save(self, cursor: PublishCursor) -> None:
        """Waits for the previous write (raising its error), then starts this one."""
        await self.flush()
        self._last = asyncio.ensure_future(self._store.save(cursor))

    async def flush(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await last

    async def settle(self) -> None:
        """After a failure: let the write in flight finish (its rows were acknowledged)."""
        last, self._last = self._last, None
        if last is not None:
            await asyncio.gather(last, return_exceptions=True)


async def publish_batch(
    deps: IngestDeps, batch: BatchRecord, upload: AsyncIterator[bytes] | None = None
) -> PublishCursor:
    """Publish `BatchAccepted`, then one contact event per row in file order, then `BatchIngested`.

    The cursor records the last acknowledged row after each block; a resumed run re-judges the earlier rows
    (so duplicates are still found) but publishes only the rows after the cursor. Contact ids are
    deterministic, so the blocks re-sent after a crash (those not yet acknowledged, or acknowledged but
    not yet recorded) are the same contacts again, which consumers ignore.

    `upload` is the upload's bytes when the caller still has them (just accepted); else they are read back
    from the upload store."""
    cursor = await deps.cursors.load(batch.batch_id) or PublishCursor(
        batch_id=batch.batch_id, workspace_id=batch.workspace_id, updated_at=deps.clock()
    )
    if cursor.state != "publishing":
        return cursor
    if not cursor.accepted_published:
        await deps.events.publish([batch.accepted_event(deps.clock())])
        cursor = cursor.model_copy(update={"accepted_published": True, "updated_at": deps.clock()})
        await deps.cursors.save(cursor)
    judge = RowJudge(await deps.do_not_call.numbers(batch.workspace_id))
    chunks = upload if upload is not None else deps.uploads.chunks(batch.batch_id, batch.upload_chunks)
    context = ContactContext(batch.workspace_id, batch.batch_id, batch.default_region, deps.clock())
    writes = _CursorWrites(deps.cursors)
    try:
        cursor, rows_seen = await _publish_rows(deps, batch, cursor, judge, chunks, context, writes)
        await writes.flush()
    except BaseException:
        await writes.settle()
        raise
    if rows_seen != batch.total_rows:
        log.error(
            "row count changed between upload and publishing",
            extra={"batch_id": batch.batch_id, "counted": batch.total_rows, "published": rows_seen},
        )
    cursor = _advanced(cursor, rows_seen, judge, deps.clock())
    await deps.events.publish([cursor.ingested_event(deps.clock(), rows_seen)])
    cursor = cursor.model_copy(update={"state": "ingested", "updated_at": deps.clock()})
    await deps.cursors.save(cursor)
    return cursor


def _advanced(cursor: PublishCursor, rows_done: int, judge: RowJudge, now: datetime) -> PublishCursor:
    """The cursor after every row up to `rows_done` is published, with the judge's running counts."""
    return cursor.model_copy(
        update={
            "rows_done": rows_done,
            "accepted": judge.accepted,
            "skipped": judge.skipped_total,
            "updated_at": now,
        }
    )


async def _publish_rows(
    deps: IngestDeps,
    batch: BatchRecord,
    cursor: PublishCursor,
    judge: RowJudge,
    chunks: AsyncIterator[bytes],
    context: ContactContext,
    writes: _CursorWrites,
) -> tuple[PublishCursor, int]:
    """Every row in file order, block by block; returns the cursor and the last row number seen.

    Up to `blocks_unacknowledged` blocks are sent and not yet acknowledged: the next block is judged and
    handed to the producer while Kafka acknowledges the earlier ones (waiting for each block's
    acknowledgement left the event loop idle half the time with the whole stack on two cores). The cursor
    still records only acknowledged rows, in order; a crash re-sends at most that many blocks, the same
    contacts again (deterministic ids)."""
    rows_seen = 0
    unacknowledged: deque[tuple[PublishCursor, Awaitable[None]]] = deque()

    async def acknowledge_oldest() -> None:
        advanced, acknowledgement = unacknowledged.popleft()
        await acknowledgement
        await writes.save(advanced)

    resumed_after = cursor.rows_done
    try:
        async for block, prepared in _prepared_blocks(
            deps, deps.reader.blocks(chunks, deps.rows_per_block), context
        ):
            header = block.header
            fresh: list[JudgedRow] = []
            append = fresh.append
            skip_of = judge.skip_of
            for record, result, body in zip(
                block.records, prepared.normalised, prepared.accepted_bodies, strict=True
            ):
                skipped = skip_of(record.row_number, result)
                if record.row_number <= resumed_after:
                    continue
                if skipped is None:
                    append(body)
                else:
                    append(ContactRow(skipped, header.variables_of(record.cells)))
            rows_seen = block.records[-1].row_number
            if fresh:
                acknowledgement = await deps.events.send_contacts(batch, fresh, deps.clock())
                cursor = _advanced(cursor, rows_seen, judge, deps.clock())
                unacknowledged.append((cursor, acknowledgement))
                if len(unacknowledged) > deps.blocks_unacknowledged:
                    await acknowledge_oldest()
        while unacknowledged:
            await acknowledge_oldest()
    finally:
        # After a failure the blocks still in flight end on their own; their outcome is not needed (a
        # resumed run sends them again), so it is taken without waiting for it.
        for _, acknowledgement in unacknowledged:
            asyncio.ensure_future(acknowledgement).add_done_callback(_outcome_not_needed)
    return cursor, rows_seen


def _outcome_not_needed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def stale_batches(deps: IngestDeps, stale_after_seconds: float) -> list[BatchRecord]:
    """Accepted batches whose publishing stopped (a crash, a restart) and has not moved for a while."""
    now = deps.clock()
    found: list[BatchRecord] = []
    for cursor in await deps.cursors.unfinished():
        if cursor.state == "publishing" and (now - cursor.updated_at).total_seconds() >= stale_after_seconds:
            batch = await deps.batches.get_any(cursor.batch_id)
            if batch is not None:
                found.append(batch)
    return found


# --- validation without creating anything ------------------------------------------------------------------


@dataclass
class RowProblem:
    row: int
    line: int
    column: str
    code: str
    message: str
    value: str


@dataclass
class ValidationReport:
    header: Header | None = None
    total_rows: int = 0
    valid_rows: int = 0
    counts: dict[SkipReason, int] = field(default_factory=dict)
    errors: list[RowProblem] = field(default_factory=list)
    preview: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def validate_upload(
    deps: IngestDeps,
    chunks: AsyncIterator[bytes],
    *,
    workspace_id: str,
    default_region: str | None,
    agent: AgentSnapshot | None,
    max_records: int,
    max_errors: int = 20,
    preview_rows: int = 10,
) -> ValidationReport:
    """Judge every row exactly as publishing would, and report instead of publishing."""
    report = ValidationReport()
    judge = RowJudge(await deps.do_not_call.numbers(workspace_id))
    context = ContactContext(workspace_id, "validation", default_region, deps.clock(), encode=False)
    async for block, prepared in _prepared_blocks(
        deps, deps.reader.blocks(chunks, deps.rows_per_block), context
    ):
        header = report.header = block.header
        for record, result in zip(block.records, prepared.normalised, strict=True):
            verdict = judge.judge(record.row_number, result)
            report.total_rows = record.row_number
            if verdict.skip is None:
                if len(report.preview) < preview_rows:
                    report.preview.append(
                        (record.row_number, verdict.phone_number, header.variables_of(record.cells))
                    )
            elif len(report.errors) < max_errors:
                report.errors.append(
                    RowProblem(
                        record.row_number,
                        record.line,
                        header.phone_column,
                        verdict.skip.value,
                        verdict.detail,
                        header.phone_of(record.cells),
                    )
                )
    report.valid_rows = judge.accepted
    report.counts = dict(judge.skipped)
    if report.header is not None and agent is not None:
        missing = uncovered_variables(agent, report.header.variable_names)
        if missing:
            rendering = "empty" if agent.missing_variable == "empty" else "left as {placeholder}"
            report.warnings.append(
                f"no column provides the agent variable(s) {', '.join(missing)}; they will be {rendering}"
            )
    if report.total_rows > max_records:
        report.warnings.append(
            f"the file has {report.total_rows} rows but the plan allows {max_records} per batch: "
            "starting it would be refused"
        )
    if report.total_rows and not report.valid_rows:
        report.warnings.append("no row has a callable number: a batch of this file would place no call")
    return report


# --- batch commands ----------------------------------------------------------------------------------------


async def _batch_of(deps: IngestDeps, workspace_id: str, batch_id: str) -> BatchRecord:
    batch = await deps.batches.get(workspace_id, batch_id)
    if batch is None:
        raise BatchNotFound(batch_id)
    return batch


async def cancel_batch(
    deps: IngestDeps, workspace_id: str, batch_id: str
) -> tuple[BatchRecord, dict[str, int]]:
    """Cancel (idempotent): waiting calls are dropped by the dispatcher, active calls finish."""
    batch = await _batch_of(deps, workspace_id, batch_id)
    now = deps.clock()
    if batch.lifecycle != "cancelled":
        await deps.batches.set_lifecycle(batch_id, "cancelled")
    await deps.events.publish(
        [
            CancelBatch(
                occurred_at=now,
                workspace_id=workspace_id,
                correlation_id=batch_id,
                batch_id=batch_id,
                requested_at=now,
            )
        ]
    )
    return batch, await deps.progress.counts(workspace_id, batch_id)


async def pause_batch(deps: IngestDeps, workspace_id: str, batch_id: str) -> BatchRecord:
    batch = await _batch_of(deps, workspace_id, batch_id)
    if batch.lifecycle == "cancelled":
        raise CommandRefused("a cancelled batch cannot be paused")
    await deps.batches.set_lifecycle(batch_id, "paused")
    await deps.events.publish(
        [
            PauseBatch(
                occurred_at=deps.clock(),
                workspace_id=workspace_id,
                correlation_id=batch_id,
                batch_id=batch_id,
            )
        ]
    )
    return batch


async def resume_batch(deps: IngestDeps, workspace_id: str, batch_id: str) -> BatchRecord:
    batch = await _batch_of(deps, workspace_id, batch_id)
    if batch.lifecycle == "cancelled":
        raise CommandRefused("a cancelled batch cannot be resumed")
    await deps.batches.set_lifecycle(batch_id, "active")
    await deps.events.publish(
        [
            ResumeBatch(
                occurred_at=deps.clock(),
                workspace_id=workspace_id,
                correlation_id=batch_id,
                batch_id=batch_id,
            )
        ]
    )
    return batch
