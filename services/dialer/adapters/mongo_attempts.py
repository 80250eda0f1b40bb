"""Attempt claims and outcomes in MongoDB: collections `dialer_attempts` and `dialer_outcomes`, one
document per attempt id in each, ever, both written by inserts only (ADR 0032).

The `_id` unique index makes the claim atomic on MongoDB and FerretDB alike (no transactions needed): an
insert either creates the claim or fails with a duplicate key. The outcome is a second insert, keyed by the
same attempt id, rather than an update of the claim: FerretDB's updates are read-modify-write and orders of
magnitude slower than its inserts, and an insert keyed by attempt id is idempotent (a retried write that
meets a duplicate key is already stored). Claims of one poll go in one `insert_many`; outcomes of
concurrent calls are gathered into one `insert_many` every few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from dialer.ports import Claim, ClaimStatus
from shared.events import CallEnded, CallRequested
from shared.mongo import Document

log = logging.getLogger(__name__)

COLLECTION = "dialer_attempts"
OUTCOMES = "dialer_outcomes"
DUPLICATE_KEY = 11000


def _claim_document(request: CallRequested, token: str, at: datetime, instance: str) -> Document:
    # Only what a claim decides and what an operator asks of it (who holds it, since when): FerretDB's cost
    # per insert grows with the fields, and the attempt's workspace, batch and contact are in its events.
    return {"_id": request.attempt_id, "claim_token": token, "claimed_by": instance, "claimed_at": at}


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
        self._outcomes: AsyncCollection[Document] = db[OUTCOMES]
        self._instance = instance
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._pending: list[tuple[Document, asyncio.Future[None]]] = []
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
        outcome = await self._outcomes.find_one({"_id": attempt_id})
        if outcome is not None:
            return Claim(attempt_id, ClaimStatus.ENDED, CallEnded.model_validate_json(outcome["ended_event"]))
        return Claim(attempt_id, ClaimStatus.HELD)

    async def record_outcome(self, ended: CallEnded, *, token: str) -> None:
        # The end event holds the outcome, its time and the ids; nothing reads them as fields.
        document: Document = {
            "_id": ended.attempt_id,
            "claim_token": token,
            "ended_event": ended.model_dump_json(),
        }
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((document, done))
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

    async def _write(self, batch: list[tuple[Document, asyncio.Future[None]]]) -> None:
        failure: Exception | None = None
        try:
            await self._outcomes.insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            # A duplicate key means that outcome is stored already (a retried write): success. Anything
            # else fails the whole batch, whose callers retry; the retries then meet duplicates.
            details: Any = exc.details
            if any(err.get("code") != DUPLICATE_KEY for err in details.get("writeErrors", [])):
                failure = exc
            elif len(details.get("writeErrors", [])) + int(details.get("nInserted", 0)) < len(batch):
                failure = exc  # stopped early (FerretDB may): retry, the stored ones will be duplicates
        except Exception as exc:
            failure = exc
        for _, done in batch:
            if done.done():
                continue
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)
