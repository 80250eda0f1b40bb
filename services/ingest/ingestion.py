"""Runs batch publishing in the background: new batches as they are accepted, and unfinished ones (after a
crash or restart) when their cursor goes stale."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

from ingest.domain.batch import BatchRecord
from ingest.handlers import IngestDeps, publish_batch, stale_batches

log = logging.getLogger(__name__)

ROWS_PUBLISHED = Counter(
    "batchcalls_ingest_rows_total",
    "Upload rows published as contact events, by verdict.",
    ["workspace", "verdict"],
)
INGESTIONS_ACTIVE = Gauge("batchcalls_ingest_active_ingestions", "Batches being published right now.")
INGESTION_FAILURES = Counter("batchcalls_ingest_failures_total", "Batch publishing runs that raised.")


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    while chunks:
        yield chunks.pop(0)  # release each chunk once parsed


class IngestionRunner:
    """At most `concurrency` batches publish at once; a batch is never published twice at once here."""

    def __init__(
        self, deps: IngestDeps, *, concurrency: int, stale_seconds: float, check_seconds: float
    ) -> None:
        self._deps = deps
        self._slots = asyncio.Semaphore(concurrency)
        self._stale_seconds = stale_seconds
        self._check_seconds = check_seconds
        self._running: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def submit(self, batch: BatchRecord, upload: list[bytes] | None = None) -> None:
        """Publish `batch` in the background; `upload` is its bytes if still at hand (else re-read)."""
        if batch.batch_id in self._running:
            return
        task = asyncio.create_task(self._run(batch, upload), name=f"ingest-{batch.batch_id}")
        self._running[batch.batch_id] = task
        task.add_done_callback(lambda _: self._running.pop(batch.batch_id, None))

    async def _run(self, batch: BatchRecord, upload: list[bytes] | None) -> None:
        async with self._slots:
            INGESTIONS_ACTIVE.inc()
            try:
                cursor = await publish_batch(self._deps, batch, _replay(upload) if upload else None)
                ROWS_PUBLISHED.labels(batch.workspace_id, "accepted").inc(cursor.accepted)
                ROWS_PUBLISHED.labels(batch.workspace_id, "skipped").inc(cursor.skipped)
                log.info(
                    "batch ingested",
                    extra={
                        "batch_id": batch.batch_id,
                        "accepted": cursor.accepted,
                        "skipped": cursor.skipped,
                    },
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # The cursor keeps the progress; the watcher retries once it goes stale.
                INGESTION_FAILURES.inc()
                log.exception(
                    "batch publishing failed; it will be resumed", extra={"batch_id": batch.batch_id}
                )
            finally:
                INGESTIONS_ACTIVE.dec()

    async def resume_stale(self) -> int:
        resumed = 0
        for batch in await stale_batches(self._deps, self._stale_seconds):
            if batch.batch_id not in self._running:
                log.info("resuming unfinished batch", extra={"batch_id": batch.batch_id})
                self.submit(batch)
                resumed += 1
        return resumed

    async def _watch(self) -> None:
        while True:
            try:
                await self.resume_stale()
            except Exception:
                log.exception("could not look for unfinished batches")
            await asyncio.sleep(self._check_seconds)

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="ingest-resume-watcher")

    async def idle(self) -> None:
        """Waits until no batch is publishing (tests and benchmarks)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def stop(self) -> None:
        tasks = [t for t in (self._watcher, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
