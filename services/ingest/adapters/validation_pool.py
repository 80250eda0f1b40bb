"""Row preparation in worker processes.

phonenumbers is pure Python and the slowest step of an upload (~45 µs a number), so blocks of records go to
a small process pool, which normalises each number and encodes the row's `ContactAccepted` body, while the
event loop parses, judges (duplicates, do-not-call) and publishes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ingest.adapters.contact_wire import wire_timestamp
from ingest.adapters.row_worker import WorkerJob, prepare_cells, start_worker
from ingest.ports import ContactContext, PreparedRows, RecordBlock
from shared.events import SCHEMA_VERSION

log = logging.getLogger(__name__)


def _arguments(block: RecordBlock, context: ContactContext) -> tuple[list[int], list[list[str]], WorkerJob]:
    job = WorkerJob(
        workspace_id=context.workspace_id,
        batch_id=context.batch_id,
        default_region=context.default_region,
        occurred_at_json=wire_timestamp(context.occurred_at),
        schema_version=SCHEMA_VERSION,
        encode=context.encode,
    )
    return [r.row_number for r in block.records], [r.cells for r in block.records], job


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
            initializer=start_worker,
        )

    async def prepare(self, block: RecordBlock, context: ContactContext) -> PreparedRows:
        loop = asyncio.get_running_loop()
        rows, cells, job = _arguments(block, context)
        for attempt in (1, 2):
            pool = self._pool
            try:
                normalised, bodies = await loop.run_in_executor(
                    pool, prepare_cells, block.header, rows, cells, job
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
        rows, cells, job = _arguments(block, context)
        normalised, bodies = await asyncio.to_thread(prepare_cells, block.header, rows, cells, job)
        return PreparedRows(normalised, bodies)

    def close(self) -> None:
        return None
