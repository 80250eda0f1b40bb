"""Attempt claims in MongoDB: collection `dialer_attempts`, one document per attempt id, ever.

The `_id` unique index makes the claim atomic on MongoDB and FerretDB alike (no transactions needed): an
insert either creates the claim or fails with a duplicate key. Each document has one writer, the dialer
that inserted it (FerretDB updates are read-modify-write). Claims of one poll go in one `insert_many`;
outcomes of concurrent calls are gathered into one `bulk_write` every few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from dialer.ports import Claim, ClaimStatus
from shared.events import CallEnded, CallRequested
from shared.mongo import Document

log = logging.getLogger(__name__)

COLLECTION = "dialer_attempts"
DUPLICATE_KEY = 11000


def _claim_document(request: CallRequested, token: str, at: datetime, instance: str) -> Document:
    return {
        "_id": request.attempt_id,
        "workspace_id": request.workspace_id,
        "batch_id": request.batch_id,
        "contact_id": request.contact_id,
        "attempt_number": request.attempt_number,
        "claim_token": token,
        "claimed_by": instance,
        "claimed_at": at,
        "state": "dialing",
    }


class MongoAttemptStore:
    """`AttemptStore` over MongoDB / FerretDB."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        instance: str,
        flush_seconds: float = 0.005,
        max_batch: int = 1000,
    ) -> None:
        self._attempts: AsyncCollection[Document] = db[COLLECTION]
        self._instance = instance
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._pending: list[tuple[UpdateOne, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    async def claim(self, requests: Sequence[CallRequested], *, token: str, at: datetime) -> list[Claim]:
        if not requests:
            return []
        docs: list[Document] = [_claim_document(r, token, at, self._instance) for r in requests]
        try:
            await self._attempts.insert_many(docs, ordered=False)
            return [Claim(r.attempt_id, ClaimStatus.CLAIMED) for r in requests]
        except BulkWriteError as exc:
            details: Any = exc.details
            duplicates = {
                int(err["index"])
                for err in details.get("writeErrors", [])
                if err.get("code") == DUPLICATE_KEY
            }
            others = [err for err in details.get("writeErrors", []) if err.get("code") != DUPLICATE_KEY]
            if others:
                log.warning("claim insert errors besides duplicates", extra={"errors": str(others[:3])})
        # Some inserts failed. Which of the rest went in is read back rather than inferred: FerretDB may stop
        # an unordered insert at its first error. Lookups are by `_id` (equality, pushed down to SQL).
        return list(
            await asyncio.gather(
                *(self._settle(doc, token, index in duplicates) for index, doc in enumerate(docs))
            )
        )

    async def _settle(self, doc: Document, token: str, duplicate: bool) -> Claim:
        attempt_id = str(doc["_id"])
        stored = None if duplicate else await self._attempts.find_one({"_id": attempt_id})
        if not duplicate and stored is None:
            try:
                await self._attempts.insert_one(doc)
                return Claim(attempt_id, ClaimStatus.CLAIMED)
            except DuplicateKeyError:
                pass
        if stored is None:
            stored = await self._attempts.find_one({"_id": attempt_id})
        if stored is None:  # pragma: no cover - a claim is never deleted while its request is in flight
            raise RuntimeError(f"claim {attempt_id} vanished")
        if stored.get("claim_token") == token:
            return Claim(attempt_id, ClaimStatus.CLAIMED)
        ended = stored.get("ended_event")
        if ended:
            return Claim(attempt_id, ClaimStatus.ENDED, CallEnded.model_validate_json(ended))
        return Claim(attempt_id, ClaimStatus.HELD)

    async def record_outcome(self, ended: CallEnded, *, token: str) -> None:
        update = UpdateOne(
            {"_id": ended.attempt_id, "claim_token": token},
            {
                "$set": {
                    "state": "ended",
                    "outcome": ended.outcome.value,
                    "billable": ended.billable,
                    "ended_at": ended.occurred_at,
                    "ended_event": ended.model_dump_json(),
                }
            },
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((update, done))
        if len(self._pending) >= self._max_batch:
            self._flush_now()
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later())
        await done

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        self._flusher = None
        self._flush_now()

    def _flush_now(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            # Each batch is written by its own task, so a slow write does not hold up the next batch.
            task = asyncio.create_task(self._write(batch))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, batch: list[tuple[UpdateOne, asyncio.Future[None]]]) -> None:
        try:
            result = await self._attempts.bulk_write([update for update, _ in batch], ordered=True)
            if result.matched_count != len(batch):
                log.error(
                    "some outcomes matched no claim",
                    extra={"expected": len(batch), "matched": result.matched_count},
                )
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
