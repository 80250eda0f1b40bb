"""Request and response bodies of the public API (they are the OpenAPI document clients and fuzzers read)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import AgentSnapshot


class ErrorBody(BaseModel):
    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["batch not found"])


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Bad request: the message says what is wrong",
        401: "Missing or invalid x-api-key / x-workspace-id",
        403: "The key does not belong to that workspace",
        404: "Not found in this workspace",
        429: "Over the plan's requests per minute (see Retry-After)",
    }.items()
}


def errors(*extra: int) -> dict[int | str, dict[str, object]]:
    texts = {409: "Conflict with the batch's state", 413: "The file is larger than 20 MB"}
    return {**ERRORS, **{code: {"model": ErrorBody, "description": texts[code]} for code in extra}}


class StartResponse(BaseModel):
    batchId: str = Field(examples=["batch_3f2a9c0d1e4b5a6f"])
    totalCalls: int = Field(description="Every data row of the upload, skipped rows included.")
    status: Literal["queued"] = "queued"
    message: str = "Batch calls initiated successfully"


class CancelDetails(BaseModel):
    completedCalls: int
    failedCalls: int
    cancelledCalls: int
    totalCalls: int


class CancelResponse(BaseModel):
    batchId: str
    status: Literal["cancelled"] = "cancelled"
    message: str
    details: CancelDetails


class CommandResponse(BaseModel):
    batchId: str
    status: Literal["paused", "processing"]
    message: str


class RowError(BaseModel):
    row: int = Field(description="1-based data row (the jobId suffix).")
    line: int = Field(description="CSV line the row ends on (the header is line 1).")
    column: str
    code: Literal["invalid_number", "duplicate", "do_not_call"]
    message: str
    value: str


class PreviewRow(BaseModel):
    row: int
    phone_number: str = Field(description="E.164")
    variables: dict[str, str]


class ValidationCounts(BaseModel):
    valid: int
    invalid: int
    duplicate: int
    doNotCall: int


class ValidationResponse(BaseModel):
    valid: bool = Field(description="True when starting this file would dial at least one number.")
    totalRows: int
    counts: ValidationCounts
    columns: list[str]
    variables: list[str] = Field(description="Columns that become dynamic variables.")
    errors: list[RowError] = Field(description="The first rows that would be skipped, in file order.")
    preview: list[PreviewRow]
    warnings: list[str]


_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=50_000, description="Template with {variable} placeholders.")
    callerId: str | None = Field(default=None, max_length=32, description="E.164 caller id.")
    defaults: dict[str, str] = Field(default_factory=dict, description="Values for variables a row lacks.")
    missingVariable: Literal["empty", "keep"] = Field(
        default="empty", description="A variable with no value renders empty, or keeps its {placeholder}."
    )
    maxCallSeconds: int = Field(default=600, ge=10, le=7200)


class AgentOut(BaseModel):
    id: str
    name: str
    prompt: str
    callerId: str | None
    defaults: dict[str, str]
    missingVariable: Literal["empty", "keep"]
    maxCallSeconds: int
    variables: list[str]
    createdAt: int = Field(description="Epoch milliseconds.")

    @classmethod
    def of(cls, agent: AgentSnapshot, created_at_ms: int) -> AgentOut:
        return cls(
            id=agent.agent_id,
            name=agent.name,
            prompt=agent.prompt_template,
            callerId=agent.caller_id,
            defaults=dict(agent.defaults),
            missingVariable=agent.missing_variable,
            maxCallSeconds=agent.max_call_seconds,
            variables=list(agent.variables),
            createdAt=created_at_ms,
        )


class Pagination(BaseModel):
    page: int
    limit: int
    total: int
    totalPages: int
    hasNext: bool
    hasPrev: bool

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        pages = (total + limit - 1) // limit
        return cls(
            page=page, limit=limit, total=total, totalPages=pages, hasNext=page < pages, hasPrev=page > 1
        )


class AgentList(BaseModel):
    agents: list[AgentOut]
    pagination: Pagination


class DncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=500)


class DncEntry(BaseModel):
    phone_number: str
    note: str
    source: str
    createdAt: int | None


class DncAdded(BaseModel):
    phone_number: str
    added: bool = Field(description="False when the number was already listed.")


class DncRemoved(BaseModel):
    phone_number: str
    removed: Literal[True] = True


class DncList(BaseModel):
    entries: list[DncEntry]
    pagination: Pagination


VARIABLE_NAME = _VARIABLE
