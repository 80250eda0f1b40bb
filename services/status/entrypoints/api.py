"""The status query API: batch status, call lists, one call's history, export, live stream and usage.

Served under both prefixes the reference documents (`/v1/batch-calls` and `/v1/api/batch-calls`). Every
route is workspace-scoped: a batch of another workspace is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from shared.api_auth import CurrentCaller
from shared.http import ApiError
from status.adapters.mongo_read_models import MongoReadModels
from status.domain.batches import BatchView
from status.domain.calls import CallListing, CallView
from status.entrypoints import schemas
from status.entrypoints.export import csv_lines
from status.entrypoints.live import stream
from status.entrypoints.status_bodies import StatusBodies, respond
from status.ports import StoredBatch

PREFIXES = ("/v1/batch-calls", "/v1/api/batch-calls")
BatchId = Annotated[str, "the batch id"]
IfNoneMatch = Annotated[
    str | None,
    Header(description="An ETag of an earlier answer: 304 without a body while the batch is unchanged."),
]
ListStatus = Literal["all", "waiting", "active", "completed", "failed", "cancelled"]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BatchCache:
    """Batch documents read in the last `ttl_ms` (per process). An expired entry is still served while one
    background read refreshes it (stale-while-revalidate), and concurrent misses share one read: a
    dashboard poll never waits on the database once the batch is warm, and 200 pollers cost one read per
    `ttl_ms`, not a stampede. Answers are at most `ttl_ms` plus one read old.

    In the process that projects, the projector also hands over every batch document right after writing
    it (`put`), so a poll sees a change at once instead of at the next refresh; a read that started before
    such a hand-over does not overwrite it with the older document."""

    def __init__(
        self, read_models: MongoReadModels, ttl_ms: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read_models = read_models
        self._ttl = ttl_ms / 1000
        self._clock = clock
        self._entries: dict[str, tuple[float, StoredBatch | None]] = {}
        self._reads: dict[str, asyncio.Future[StoredBatch | None]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()
        self._handovers: dict[str, int] = {}
        """Per batch, how many documents the projector handed over (a read started before one is stale)."""

    def put(self, batches: Sequence[StoredBatch]) -> None:
        """The projector wrote these batch documents (the ones readers see)."""
        now = self._clock()
        for stored in batches:
            batch_id = stored.view.batch_id
            self._handovers[batch_id] = self._handovers.get(batch_id, 0) + 1
            self._entries[batch_id] = (now, stored)
        self._bound()

    def _bound(self) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
            self._handovers.clear()

    async def _read(self, batch_id: str) -> StoredBatch | None:
        pending = self._reads.get(batch_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[StoredBatch | None] = asyncio.get_running_loop().create_future()
        self._reads[batch_id] = future
        handovers = self._handovers.get(batch_id, 0)
        try:
            stored = await self._read_models.shown_batch(batch_id)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiter re-raises it, nobody else logs it
            raise
        finally:
            self._reads.pop(batch_id, None)
        newer = self._entries.get(batch_id)
        if newer is not None and self._handovers.get(batch_id, 0) != handovers:
            # The projector handed over a newer document while this read was on its way.
            stored = newer[1]
        else:
            self._bound()
            self._entries[batch_id] = (self._clock(), stored)
        future.set_result(stored)
        return stored

    async def _refresh(self, batch_id: str) -> None:
        with contextlib.suppress(Exception):  # the next request tries again
            await self._read(batch_id)

    async def get(self, workspace_id: str, batch_id: str) -> StoredBatch | None:
        hit = self._entries.get(batch_id)
        if hit is None or self._ttl == 0:
            stored = await self._read(batch_id)
        else:
            if self._clock() - hit[0] >= self._ttl and batch_id not in self._reads:
                task = asyncio.create_task(self._refresh(batch_id))
                self._refreshes.add(task)
                task.add_done_callback(self._refreshes.discard)
            stored = hit[1]
        if stored is None or stored.view.workspace_id != workspace_id:
            return None
        return stored


def _read_models(request: Request) -> MongoReadModels:
    read_models: MongoReadModels = request.app.state.read_models
    return read_models


def _cache(request: Request) -> BatchCache:
    cache: BatchCache = request.app.state.batch_cache
    return cache


def _bodies(request: Request) -> StatusBodies:
    bodies: StatusBodies = request.app.state.status_bodies
    return bodies


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _batch(request: Request, caller: CurrentCaller, batch_id: str) -> StoredBatch:
    stored = await _cache(request).get(caller.workspace_id, batch_id)
    if stored is None:
        raise ApiError(404, "not_found", f"batch {batch_id} not found")
    return stored


def batch_router() -> APIRouter:
    router = APIRouter(tags=["batch status"])

    @router.get(
        "",
        response_model=schemas.BatchListBody,
        responses=schemas.error_responses(400, 401, 403, 429),
        summary="List the workspace's batches, newest first",
    )
    async def list_batches(
        request: Request,
        caller: CurrentCaller,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> schemas.BatchListBody:
        stored = await _read_models(request).workspace_batches(caller.workspace_id)
        views = sorted((s.view for s in stored), key=lambda b: (-(b.created_at or 0), b.batch_id))
        chosen = views[(page - 1) * limit : page * limit]
        return schemas.BatchListBody(
            batches=[schemas.batch_summary(b) for b in chosen],
            pagination=schemas.pagination(page, limit, len(views)),
        )

    @router.get(
        "/{batch_id}",
        response_model=schemas.BatchStatusBody,
        responses=schemas.error_responses(401, 403, 404, 429),
        summary="Batch status with a nested progress object",
    )
    async def batch_status(
        request: Request, caller: CurrentCaller, batch_id: BatchId, if_none_match: IfNoneMatch = None
    ) -> Response:
        stored = await _batch(request, caller, batch_id)
        return respond(_bodies(request).nested(stored.view), if_none_match, _now_ms())

    @router.get(
        "/{batch_id}/status",
        response_model=schemas.FlatStatusBody,
        responses=schemas.error_responses(401, 403, 404, 429),
        summary="The same numbers flattened, for polling dashboards",
    )
    async def flat_status(
        request: Request, caller: CurrentCaller, batch_id: BatchId, if_none_match: IfNoneMatch = None
    ) -> Response:
        stored = await _batch(request, caller, batch_id)
        return respond(_bodies(request).flat(stored.view), if_none_match, _now_ms())

    @router.get(
        "/{batch_id}/calls",
        response_model=schemas.CallsBody,
        responses=schemas.error_responses(400, 401, 403, 404, 429),
        summary="A page of the batch's calls, optionally by status",
    )
    async def list_calls(
        request: Request,
        caller: CurrentCaller,
        batch_id: BatchId,
        page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        status: ListStatus = "all",
    ) -> Response:
        stored = await _batch(request, caller, batch_id)
        batch = stored.view
        skip = (page - 1) * limit
        listed: list[CallListing]
        if status == "all":
            total = batch.counts.seen
            rows = await _read_models(request).calls_by_rows(batch_id, skip + 1, skip + limit)
            listed = [r.view.listing() for r in rows]
        else:
            total = getattr(batch.counts, status)
            if skip >= total:
                listed = []
            else:
                listed = await _read_models(request).calls_in_list(stored, status, skip, limit)
        body = schemas.CallsBody(
            calls=[schemas.call_item(c) for c in listed],
            pagination=schemas.pagination(page, limit, total),
            summary=schemas.summary(batch),
        )
        # Serialized here: FastAPI would validate the hundred items against the response model again and
        # encode them in Python (a few milliseconds of a deep page); the model still documents the route.
        return Response(body.model_dump_json(by_alias=True), media_type="application/json")

    @router.get(
        "/{batch_id}/calls/{job_id}",
        response_model=schemas.CallDetailBody,
        responses=schemas.error_responses(401, 403, 404, 429),
        summary="One call with its attempt history",
    )
    async def call_detail(
        request: Request, caller: CurrentCaller, batch_id: BatchId, job_id: str
    ) -> schemas.CallDetailBody:
        await _batch(request, caller, batch_id)
        stored = await _read_models(request).latest_call(job_id)
        if (
            stored is None
            or stored.view.batch_id != batch_id
            or stored.view.workspace_id != caller.workspace_id
        ):
            raise ApiError(404, "not_found", f"call {job_id} not found in batch {batch_id}")
        return schemas.call_detail(stored.view)

    @router.get(
        "/{batch_id}/export",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/csv": {}},
                "description": "Every contact with outcome, attempts, billing",
            },
            **schemas.error_responses(401, 403, 404, 429),
        },
        summary="Results export (CSV, streamed)",
    )
    async def export(request: Request, caller: CurrentCaller, batch_id: BatchId) -> StreamingResponse:
        stored = await _batch(request, caller, batch_id)
        columns = stored.view.columns[1] if stored.view.columns else ()

        async def views() -> AsyncIterator[CallView]:
            async for call in _read_models(request).all_calls(stored):
                yield call.view

        return StreamingResponse(
            csv_lines(views(), columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}.csv"'},
        )

    @router.get(
        "/{batch_id}/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "Server-Sent Events: `progress`, `call`, `batch.<status>`, then `end`. "
                "Resume with the `Last-Event-ID` header.",
            },
            **schemas.error_responses(400, 401, 403, 404, 429),
        },
        summary="Live progress and call events (Server-Sent Events)",
    )
    async def events(
        request: Request,
        caller: CurrentCaller,
        batch_id: BatchId,
        last_event_id: Annotated[str | None, Header()] = None,
        lastEventId: Annotated[
            int | None, Query(ge=0, description="Same as the Last-Event-ID header")
        ] = None,
    ) -> StreamingResponse:
        stored = await _batch(request, caller, batch_id)
        resume = lastEventId
        if last_event_id is not None and last_event_id.strip():
            if not last_event_id.strip().isdigit():
                raise ApiError(400, "bad_request", "Last-Event-ID must be a number from this stream")
            resume = int(last_event_id.strip())
        read_models = _read_models(request)
        settings = request.app.state.settings

        async def current() -> BatchView | None:
            found = await _cache(request).get(caller.workspace_id, batch_id)
            return found.view if found else None

        return StreamingResponse(
            stream(
                stored.view,
                resume,
                read_models.feed_page,
                current,
                request.is_disconnected,
                poll_seconds=settings.sse_poll_ms / 1000,
                heartbeat_seconds=settings.sse_heartbeat_seconds,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


def usage_router() -> APIRouter:
    router = APIRouter(tags=["usage"])

    @router.get(
        "/v1/usage",
        response_model=schemas.UsageBody,
        response_model_by_alias=True,
        responses=schemas.error_responses(400, 401, 403, 429),
        summary="Billable attempts and minutes per batch and per period",
    )
    async def usage(
        request: Request,
        caller: CurrentCaller,
        from_: Annotated[str | None, Query(alias="from", description="First UTC day, YYYY-MM-DD")] = None,
        to: Annotated[str | None, Query(description="Last UTC day, YYYY-MM-DD")] = None,
        period: Literal["day", "month"] = "day",
    ) -> schemas.UsageBody:
        for name, value in (("from", from_), ("to", to)):
            if value is not None:
                if not _DAY.match(value):
                    raise ApiError(400, "bad_request", f"{name} must be a date, YYYY-MM-DD")
                try:
                    date.fromisoformat(value)
                except ValueError as exc:
                    raise ApiError(400, "bad_request", f"{name} is not a real date") from exc
        stored = await _read_models(request).workspace_batches(caller.workspace_id)
        per_batch: list[schemas.UsageBatch] = []
        periods: dict[str, list[float]] = {}
        for s in sorted(stored, key=lambda s: (-(s.view.created_at or 0), s.view.batch_id)):
            attempts = minutes = 0
            seconds_ms = 0
            for u in s.view.usage:
                if (from_ and u.day < from_) or (to and u.day > to):
                    continue
                attempts += u.attempts
                minutes += u.minutes
                seconds_ms += u.seconds_ms
                key = u.day if period == "day" else u.day[:7]
                line = periods.setdefault(key, [0, 0, 0])
                line[0] += u.attempts
                line[1] += u.minutes
                line[2] += u.seconds_ms
            if attempts:
                per_batch.append(
                    schemas.UsageBatch(
                        batchId=s.view.batch_id,
                        name=s.view.accepted.name if s.view.accepted else None,
                        billableAttempts=attempts,
                        billableMinutes=minutes,
                        billableSeconds=seconds_ms / 1000,
                    )
                )
        return schemas.UsageBody(
            workspaceId=caller.workspace_id,
            period=period,
            fromDate=from_,
            toDate=to,
            totals=schemas.UsageLine(
                billableAttempts=sum(b.billableAttempts for b in per_batch),
                billableMinutes=sum(b.billableMinutes for b in per_batch),
                billableSeconds=math.fsum(b.billableSeconds for b in per_batch),
            ),
            batches=per_batch,
            periods=[
                schemas.UsagePeriod(
                    period=key,
                    billableAttempts=int(v[0]),
                    billableMinutes=int(v[1]),
                    billableSeconds=v[2] / 1000,
                )
                for key, v in sorted(periods.items())
            ],
        )

    return router
