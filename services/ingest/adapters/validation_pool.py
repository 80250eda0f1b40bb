"""Row preparation in worker processes.

phonenumbers is pure Python and the slowest step of an upload (~45 µs a number), so blocks of records go to
a small process pool, which normalises each number and encodes the row's `ContactAccepted` body, while the
event loop parses, judges (duplicates, do-not-call) and publishes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ingest.adapters.contact_wire import ContactEncoder, random_uuid4s
from ingest.domain.csv_layout import Header
from ingest.domain.phone import INVALID_MARK, normalise_many
from ingest.ports import ContactContext, PreparedRows, RecordBlock

log = logging.getLogger(__name__)


def prepare_cells(
    header: Header, rows: list[int], cells: list[list[str]], context: ContactContext
) -> tuple[list[str], list[bytes]]:
    """The work of one block (runs in a worker): normalised numbers and accepted bodies, per record."""
    phone_of, variables_of = header.phone_of, header.variables_of
    normalised = normalise_many([phone_of(row) for row in cells], context.default_region)
    if not context.encode:
        return normalised, [b""] * len(cells)
    encoder = ContactEncoder(context.workspace_id, context.batch_id, context.occurred_at)
    bodies: list[bytes] = []
    append = bodies.append
    for row_number, row, result, event_id in zip(
        rows, cells, normalised, random_uuid4s(len(cells)), strict=True
    ):
        if result.startswith(INVALID_MARK):
            append(b"")
        else:
            append(encoder.accepted(event_id, row_number, result, variables_of(row)))
    return normalised, bodies


def _arguments(block: RecordBlock) -> tuple[list[int], list[list[str]]]:
    return [r.row_number for r in block.records], [r.cells for r in block.records]


def _exit_with_parent(parent: int) -> None:
    # A worker whose ingest process was killed (SIGKILL, OOM) would otherwise live on as an orphan.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker() -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # Load the metadata of the common regions once per worker, not during the first upload.
    normalise_many(["+14155550123", "+442079460958", "+33142685300", "+4930901820"], None)


class ProcessPoolPreparer:
    """`RowPreparer` over `workers` processes (spawned: forking a process that has threads is unsafe).
    A pool whose worker died (say, killed for memory) is replaced and the block retried once."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )

    async def prepare(self, block: RecordBlock, context: ContactContext) -> PreparedRows:
        loop = asyncio.get_running_loop()
        rows, cells = _arguments(block)
        for attempt in (1, 2):
            pool = self._pool
            try:
                normalised, bodies = await loop.run_in_executor(
                    pool, prepare_cells, block.header, rows, cells, context
                )
                return PreparedRows(normalised, bodies)
            except BrokenProcessPool:
                if attempt == 2:
                    raise
                log.warning("a validation worker died; replacing the pool")
                if self._pool is pool:
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class InlinePreparer:
    """`RowPreparer` in a thread of this process: for tests and one-core deployments."""

    async def prepare(self, block: RecordBlock, context: ContactContext) -> PreparedRows:
        rows, cells = _arguments(block)
        normalised, bodies = await asyncio.to_thread(prepare_cells, block.header, rows, cells, context)
        return PreparedRows(normalised, bodies)

    def close(self) -> None:
        return None
