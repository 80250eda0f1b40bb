"""The public HTTP API of ingest. Batch routes are served under both `/v1/batch-calls` and
`/v1/api/batch-calls` (the reference documents both); agents and do-not-call entries under `/v1`."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from ingest.bootstrap import Runtime
from ingest.domain import agents as agent_rules
from ingest.domain import batch_options, ids
from ingest.domain.batch import BatchRecord, PublishCursor
from ingest.domain.csv_layout import UploadRejected
from ingest.domain.phone import normalise
from ingest.domain.template import template_csv
from ingest.entrypoints.schemas import (
    VARIABLE_NAME,
    AgentIn,
    AgentList,
    AgentOut,
    CancelDetails,
    CancelResponse,
    CommandResponse,
    DncAdded,
    DncEntry,
    DncIn,
    DncList,
    DncRemoved,
    Pagination,
    PreviewRow,
    RowError,
    StartResponse,
    ValidationCounts,
    ValidationResponse,
    errors,
)
from ingest.entrypoints.upload_form import UploadForm, UploadSpool, read_upload_form, rejected
from ingest.handlers import (
    BatchNotFound,
    CommandRefused,
    cancel_batch,
    pause_batch,
    resume_batch,
    validate_upload,
)
from ingest.ports import StoredAgent
from shared.api_auth import Caller, CurrentCaller
from shared.events import RetryPolicySpec
from shared.http import ApiError, install_common_routes
from shared.outcomes import SkipReason

BATCH_PREFIXES = ("/v1/batch-calls", "/v1/api/batch-calls")

UPLOADS = Counter(
    "batchcalls_ingest_uploads_total",
    "Batch start requests by workspace and result (accepted, or the error code of the refusal).",
    ["workspace", "result"],
)
UPLOAD_BYTES = Histogram(
    "batchcalls_ingest_upload_bytes",
    "Size of accepted uploads.",
    buckets=(1e3, 1e4, 1e5, 1e6, 5e6, 1e7, 2.1e7),
)

_FORM_FIELDS: dict[str, Any] = {
    "file": {"type": "string", "format": "binary", "description": "CSV, UTF-8, at most 20 MB."},
    "agentId": {"type": "string", "description": "The agent that places the calls."},
    "scheduledAt": {"type": "string", "description": "UTC ISO-8601 `YYYY-MM-DDTHH:MM:SSZ`; absent = now."},
    "smartCallbackConfig": {
        "type": "string",
        "description": 'JSON: {"enabled": true, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 4}]}',
    },
    "callingWindow": {
        "type": "string",
        "description": 'JSON: {"days": [0,1,2,3,4], "start": "09:00", "end": "20:00", "timezone": "UTC"}',
    },
    "retryPolicy": {
        "type": "string",
        "description": 'JSON: {"maxAttempts": 3, "gapsSeconds": [600, 3600], "retryVoicemail": false}',
    },
    "webhookUrl": {"type": "string", "description": "http(s) URL for batch and call webhooks."},
    "dryRun": {"type": "string", "enum": ["true", "false"], "description": "Dial only the first contact."},
    "name": {"type": "string", "description": "A label for the batch."},
}


def _form_body(required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": _FORM_FIELDS, "required": required}
                }
            },
        }
    }


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _epoch_ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime) else None


def _option(fields: dict[str, str], name: str) -> str | None:
    value = fields.get(name)
    return value if value is not None and value.strip() else None


def _batch_options(fields: dict[str, str]) -> dict[str, Any]:
    """The optional start fields, parsed; raises `ApiError` 400 naming the bad field."""
    try:
        options: dict[str, Any] = {}
        if (value := _option(fields, "scheduledAt")) is not None:
            options["scheduled_at"] = batch_options.parse_scheduled_at(value)
        retry = RetryPolicySpec()
        if (value := _option(fields, "smartCallbackConfig")) is not None:
            retry = batch_options.parse_smart_callback(value)
        if (value := _option(fields, "retryPolicy")) is not None:
            retry = batch_options.parse_retry_policy(value, retry)
        options["retry_policy"] = retry
        if (value := _option(fields, "callingWindow")) is not None:
            options["calling_window"] = batch_options.parse_calling_window(value)
        if (value := _option(fields, "webhookUrl")) is not None:
            options["webhook_url"] = batch_options.parse_webhook_url(value)
        if (value := _option(fields, "dryRun")) is not None:
            options["dry_run"] = batch_options.parse_flag("dryRun", value)
        if (value := _option(fields, "name")) is not None:
            if len(value) > 200:
                raise batch_options.InvalidOption("name", "at most 200 characters")
            options["name"] = value.strip()
        return options
    except batch_options.InvalidOption as exc:
        raise ApiError(400, "invalid_field", f"{exc.field}: {exc.message}", field=exc.field) from exc


async def _agent_of(runtime: Runtime, caller: Caller, agent_id: str) -> StoredAgent:
    stored = await runtime.agents.get(caller.workspace_id, agent_id)
    if stored is None:
        raise ApiError(404, "not_found", f"agent {agent_id} not found")
    return stored


def _batch_router(prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["batch-calls"])

    @router.post(
        "",
        response_model=StartResponse,
        responses=errors(409, 413),
        openapi_extra=_form_body(["file", "agentId"]),
        summary="Start a batch from a CSV upload",
    )
    async def start_batch(
        request: Request,
        caller: CurrentCaller,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> StartResponse:
        runtime = _runtime(request)
        settings = runtime.settings
        workspace = caller.workspace
        batch_id = ids.batch_id(secrets.token_hex(8))
        key = idempotency_key.strip() if idempotency_key and idempotency_key.strip() else None
        if key is not None:
            existing = await runtime.idempotency.reserve(workspace.workspace_id, key, batch_id)
            if existing is not None:
                if isinstance(existing.get("response"), dict):
                    return StartResponse.model_validate(existing["response"])
                raise ApiError(409, "conflict", "a request with this Idempotency-Key is still in progress")
        spool = UploadSpool(
            runtime.deps.uploads,
            batch_id,
            max_bytes=settings.max_upload_bytes,
            chunk_bytes=settings.upload_chunk_bytes,
        )
        try:
            form = await read_upload_form(request, spool, max_file_bytes=settings.max_upload_bytes)
            if not form.has_file:
                raise ApiError(400, "bad_request", "the 'file' field is required")
            try:
                counted = await spool.finish()
            except UploadRejected as exc:
                raise rejected(exc) from exc
            assert counted is not None
            _header, rows = counted
            if rows == 0:
                raise ApiError(400, "empty_file", "the file has a header but no data rows")
            allowed = workspace.plan.max_records_per_batch
            if rows > allowed:
                raise ApiError(
                    400, "too_many_records", f"the file has {rows} rows; the plan allows {allowed} per batch"
                )
            agent_id = _option(form.fields, "agentId")
            if agent_id is None:
                raise ApiError(400, "bad_request", "the 'agentId' field is required")
            options = _batch_options(form.fields)
            stored = await _agent_of(runtime, caller, agent_id.strip())
            now = runtime.deps.clock()
            batch = BatchRecord(
                batch_id=batch_id,
                workspace_id=workspace.workspace_id,
                agent=stored.agent,
                total_rows=rows,
                upload_bytes=spool.size,
                upload_chunks=spool.chunks_written,
                default_region=workspace.default_region,
                created_at=now,
                **options,
            )
            # The cursor first: a crash after it and before the batch document leaves nothing to resume,
            # a crash after both is resumed by the watcher.
            await runtime.deps.cursors.save(
                PublishCursor(batch_id=batch_id, workspace_id=workspace.workspace_id, updated_at=now)
            )
            await runtime.deps.batches.create(batch)
        except BaseException as exc:
            UPLOADS.labels(workspace.workspace_id, getattr(exc, "error", "error")).inc()
            await spool.settle()
            if spool.chunks_written:
                await runtime.deps.uploads.delete(batch_id)
            if key is not None:
                await runtime.idempotency.release(workspace.workspace_id, key)
            raise
        runtime.runner.submit(batch, spool.memory)
        UPLOADS.labels(workspace.workspace_id, "accepted").inc()
        UPLOAD_BYTES.observe(spool.size)
        response = StartResponse(batchId=batch_id, totalCalls=rows)
        if key is not None:
            await runtime.idempotency.complete(workspace.workspace_id, key, response.model_dump())
        return response

    @router.post(
        "/validate",
        response_model=ValidationResponse,
        responses=errors(413),
        openapi_extra=_form_body(["file"]),
        summary="Check a CSV without creating anything",
    )
    async def validate(request: Request, caller: CurrentCaller) -> ValidationResponse:
        runtime = _runtime(request)
        settings = runtime.settings
        spool = UploadSpool(
            None, "validate", max_bytes=settings.max_upload_bytes, chunk_bytes=settings.upload_chunk_bytes
        )
        form: UploadForm = await read_upload_form(request, spool, max_file_bytes=settings.max_upload_bytes)
        if not form.has_file:
            raise ApiError(400, "bad_request", "the 'file' field is required")
        try:
            await spool.finish()
        except UploadRejected as exc:
            raise rejected(exc) from exc
        _batch_options(form.fields)
        agent_id = _option(form.fields, "agentId")
        agent = (await _agent_of(runtime, caller, agent_id.strip())).agent if agent_id else None

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in spool.memory:
                yield chunk

        try:
            report = await validate_upload(
                runtime.deps,
                chunks(),
                workspace_id=caller.workspace_id,
                default_region=caller.workspace.default_region,
                agent=agent,
                max_records=caller.plan.max_records_per_batch,
            )
        except UploadRejected as exc:
            raise rejected(exc) from exc
        header = report.header
        if header is None:
            raise ApiError(400, "empty_file", "the file is empty")
        counts = report.counts
        return ValidationResponse(
            valid=report.valid_rows > 0 and report.total_rows <= caller.plan.max_records_per_batch,
            totalRows=report.total_rows,
            counts=ValidationCounts(
                valid=report.valid_rows,
                invalid=counts.get(SkipReason.INVALID_NUMBER, 0),
                duplicate=counts.get(SkipReason.DUPLICATE, 0),
                doNotCall=counts.get(SkipReason.DO_NOT_CALL, 0),
            ),
            columns=list(header.columns),
            variables=list(header.variable_names),
            errors=[
                RowError(
                    row=e.row, line=e.line, column=e.column, code=e.code, message=e.message, value=e.value
                )
                for e in report.errors
            ],
            preview=[PreviewRow(row=r, phone_number=p, variables=v) for r, p, v in report.preview],
            warnings=report.warnings,
        )

    @router.get(
        "/template",
        response_class=Response,
        responses={
            **errors(),
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "A CSV template"},
        },
        summary="Download a CSV template (with the agent's variables)",
    )
    async def template(
        request: Request,
        caller: CurrentCaller,
        agent_id: Annotated[str | None, Query(alias="agentId", max_length=200)] = None,
    ) -> Response:
        runtime = _runtime(request)
        agent = (await _agent_of(runtime, caller, agent_id)).agent if agent_id else None
        return Response(
            template_csv(agent),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="batch-calls-template.csv"'},
        )

    @router.delete("/{batch_id}", response_model=CancelResponse, responses=errors(), summary="Cancel a batch")
    async def cancel(request: Request, caller: CurrentCaller, batch_id: str) -> CancelResponse:
        runtime = _runtime(request)
        try:
            batch, counts = await cancel_batch(runtime.deps, caller.workspace_id, batch_id)
        except BatchNotFound as exc:
            raise ApiError(404, "not_found", f"batch {batch_id} not found") from exc
        return CancelResponse(
            batchId=batch_id,
            message="Batch calls cancelled successfully",
            details=CancelDetails(
                completedCalls=counts.get("completed", 0),
                failedCalls=counts.get("failed", 0),
                cancelledCalls=counts.get("cancelled", 0),
                totalCalls=batch.total_rows,
            ),
        )

    @router.post(
        "/{batch_id}/pause", response_model=CommandResponse, responses=errors(409), summary="Pause a batch"
    )
    async def pause(request: Request, caller: CurrentCaller, batch_id: str) -> CommandResponse:
        try:
            await pause_batch(_runtime(request).deps, caller.workspace_id, batch_id)
        except BatchNotFound as exc:
            raise ApiError(404, "not_found", f"batch {batch_id} not found") from exc
        except CommandRefused as exc:
            raise ApiError(409, "conflict", str(exc)) from exc
        return CommandResponse(batchId=batch_id, status="paused", message="Batch calls paused")

    @router.post(
        "/{batch_id}/resume", response_model=CommandResponse, responses=errors(409), summary="Resume a batch"
    )
    async def resume(request: Request, caller: CurrentCaller, batch_id: str) -> CommandResponse:
        try:
            await resume_batch(_runtime(request).deps, caller.workspace_id, batch_id)
        except BatchNotFound as exc:
            raise ApiError(404, "not_found", f"batch {batch_id} not found") from exc
        except CommandRefused as exc:
            raise ApiError(409, "conflict", str(exc)) from exc
        return CommandResponse(batchId=batch_id, status="processing", message="Batch calls resumed")

    return router


def _agents_router() -> APIRouter:
    router = APIRouter(prefix="/v1/agents", tags=["agents"])

    @router.post("", response_model=AgentOut, status_code=201, responses=errors(), summary="Create an agent")
    async def create_agent(request: Request, caller: CurrentCaller, body: AgentIn) -> AgentOut:
        runtime = _runtime(request)
        bad = [k for k in body.defaults if not re.match(VARIABLE_NAME, k)]
        if bad:
            raise ApiError(
                400, "invalid_field", f"defaults: '{bad[0]}' is not a variable name", field="defaults"
            )
        caller_id = None
        if body.callerId is not None:
            caller_id = normalise(body.callerId, caller.workspace.default_region).e164
            if caller_id is None:
                raise ApiError(400, "invalid_field", "callerId: not a valid phone number", field="callerId")
        agent = agent_rules.snapshot(
            ids.agent_id(secrets.token_hex(8)),
            body.name,
            body.prompt,
            caller_id=caller_id,
            defaults=body.defaults,
            missing_variable=body.missingVariable,
            max_call_seconds=body.maxCallSeconds,
        )
        now = runtime.deps.clock()
        await runtime.agents.create(
            StoredAgent(agent=agent, workspace_id=caller.workspace_id, created_at=now)
        )
        return AgentOut.of(agent, _epoch_ms(now) or 0)

    @router.get("", response_model=AgentList, responses=errors(), summary="List agents")
    async def list_agents(
        request: Request,
        caller: CurrentCaller,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> AgentList:
        found, total = await _runtime(request).agents.page(caller.workspace_id, (page - 1) * limit, limit)
        return AgentList(
            agents=[AgentOut.of(s.agent, _epoch_ms(s.created_at) or 0) for s in found],
            pagination=Pagination.of(page, limit, total),
        )

    @router.get("/{agent_id}", response_model=AgentOut, responses=errors(), summary="Get an agent")
    async def get_agent(request: Request, caller: CurrentCaller, agent_id: str) -> AgentOut:
        stored = await _agent_of(_runtime(request), caller, agent_id)
        return AgentOut.of(stored.agent, _epoch_ms(stored.created_at) or 0)

    return router


def _normalised_or_400(caller: Caller, raw: str) -> str:
    result = normalise(raw, caller.workspace.default_region)
    if result.e164 is None:
        raise ApiError(400, "invalid_number", f"phone_number: {result.problem}", field="phone_number")
    return result.e164


def _dnc_router() -> APIRouter:
    router = APIRouter(prefix="/v1/dnc", tags=["do-not-call"])

    @router.post(
        "", response_model=DncAdded, responses=errors(), summary="Add a number to the do-not-call list"
    )
    async def add(request: Request, caller: CurrentCaller, body: DncIn) -> DncAdded:
        number = _normalised_or_400(caller, body.phone_number)
        added = await _runtime(request).dnc.add(caller.workspace_id, number, source="api", note=body.note)
        return DncAdded(phone_number=number, added=added)

    @router.get("", response_model=DncList, responses=errors(), summary="List do-not-call entries")
    async def list_entries(
        request: Request,
        caller: CurrentCaller,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> DncList:
        docs, total = await _runtime(request).dnc_pages.page(caller.workspace_id, (page - 1) * limit, limit)
        return DncList(
            entries=[
                DncEntry(
                    phone_number=str(d.get("phone_number", "")),
                    note=str(d.get("note", "")),
                    source=str(d.get("source", "")),
                    createdAt=_epoch_ms(d.get("created_at")),
                )
                for d in docs
            ],
            pagination=Pagination.of(page, limit, total),
        )

    @router.delete(
        "/{phone_number}", response_model=DncRemoved, responses=errors(), summary="Remove a do-not-call entry"
    )
    async def remove(request: Request, caller: CurrentCaller, phone_number: str) -> DncRemoved:
        number = _normalised_or_400(caller, phone_number)
        if not await _runtime(request).dnc.remove(caller.workspace_id, number):
            raise ApiError(404, "not_found", f"{number} is not on the do-not-call list")
        return DncRemoved(phone_number=number)

    return router


def create_app(runtime: Runtime) -> FastAPI:
    """The ingest app over a built (not yet started) runtime; the lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Batch Calls — ingest",
        version="1.0.0",
        description="Start, validate and control batches of AI voice calls; agents and do-not-call entries.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.workspaces = runtime.directory
    app.state.request_limiter = runtime.limiter
    install_common_routes(app, "ingest", [runtime.check_mongo, runtime.check_kafka])
    for prefix in BATCH_PREFIXES:
        app.include_router(_batch_router(prefix))
    app.include_router(_agents_router())
    app.include_router(_dnc_router())
    return app
