"""Event and command contracts carried on Kafka.

Every message is one pydantic model with a common envelope (`event_id`, `schema_version`, timezone-aware
`occurred_at`, `workspace_id`, `correlation_id`) and a `type` discriminator. Events are named in the past
tense, commands in the imperative. `decode()` turns any message body back into its model.

A change here changes the wire format: the golden files in `tests/unit/contracts/golden/` make it visible.
"""

from __future__ import annotations

import random
from datetime import time
from typing import Annotated, Literal, get_args
from uuid import UUID, SafeUUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from shared.outcomes import Outcome, SkipReason

SCHEMA_VERSION: Literal[1] = 1

START_TOLERANCE_SECONDS = 0.045
"""How late after its `CallRequested.not_before` a dialer may still start a call when the request carries no
`start_by` (docs/adr/0024), and the longest a slot planned at the plan's rate stays open: the dispatcher
narrows it down to 15 ms for dialers that start punctually, and keeps it at this while they do not. At a
fixed 20 ms most slots of a busy dialer were missed and planned again: a Python dialer's timers fire tens
of milliseconds late when thousands of calls are due together (the dispatcher then also backs off its pace,
DialerPace)."""

SLOT_MISSED = "slot_missed"
"""`CallEnded.provider_code` of a request the dialer did not dial because it came too late for its slot
(a system error: not billed, no attempt of the contact's budget; the dispatcher plans it again at once)."""


_VERSION_4 = (0xF000 << 64, 4 << 76)
_VARIANT = (0xC000 << 48, 0x8000 << 48)


def new_event_id() -> UUID:
    """A random (version 4) UUID, half the cost of `uuid.uuid4`: from the `random` module (which re-seeds in
    a forked child) rather than a system call per id, and without `UUID.__init__`'s checks. An event id
    must be unique, not unpredictable; a dialer makes four per call."""
    value = random.getrandbits(128) & ~_VERSION_4[0] & ~_VARIANT[0] | _VERSION_4[1] | _VARIANT[1]
    made = object.__new__(UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made


class Message(BaseModel):
    """The envelope every event and command shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(default_factory=new_event_id)
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: AwareDatetime
    workspace_id: str
    correlation_id: str = Field(description="The batch id the message belongs to, carried end to end.")


# --- value objects carried inside messages ----------------------------------------------------------------


class CallingWindowSpec(BaseModel):
    """When a recipient may be called, in their local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[int, ...] = Field(default=(0, 1, 2, 3, 4, 5, 6), description="ISO weekdays, 0 = Monday.")
    start: time = time(8, 0)
    end: time = time(21, 0)
    fallback_timezone: str | None = Field(
        default=None, description="IANA zone used when the number's zone cannot be determined."
    )


class RetryPolicySpec(BaseModel):
    """A batch's retry settings; `None` fields mean the dispatcher's defaults (DESIGN.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int | None = Field(default=None, ge=1, le=20)
    gaps_seconds: tuple[int, ...] | None = Field(
        default=None, description="Waits between attempts, a ladder."
    )
    retry_voicemail: bool = False


class AgentSnapshot(BaseModel):
    """The agent as it was when the batch started, so later edits never change a running batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str
    name: str
    prompt_template: str
    variables: tuple[str, ...]
    caller_id: str | None = None
    defaults: dict[str, str] = Field(default_factory=dict)
    missing_variable: Literal["empty", "keep"] = "empty"
    max_call_seconds: int = Field(default=600, ge=1)


# --- batch lifecycle (topic `batches`, key: workspace id) ---------------------------------------------------


class BatchAccepted(Message):
    """An upload passed the file-level checks and is stored durably; its contacts follow."""

    type: Literal["batch.accepted"] = "batch.accepted"
    batch_id: str
    name: str | None = None
    total_rows: int
    agent: AgentSnapshot
    scheduled_at: AwareDatetime | None = None
    calling_window: CallingWindowSpec | None = None
    retry_policy: RetryPolicySpec = RetryPolicySpec()
    webhook_url: str | None = None
    dry_run: bool = False
    created_at: AwareDatetime


class BatchIngested(Message):
    """Every row of the batch has been published as a contact event."""

    type: Literal["batch.ingested"] = "batch.ingested"
    batch_id: str
    total_rows: int
    accepted: int
    skipped: int


class CancelBatch(Message):
    type: Literal["batch.cancel"] = "batch.cancel"
    batch_id: str
    requested_at: AwareDatetime


class PauseBatch(Message):
    type: Literal["batch.pause"] = "batch.pause"
    batch_id: str


class ResumeBatch(Message):
    type: Literal["batch.resume"] = "batch.resume"
    batch_id: str


# --- contacts (topic `contacts`, key: workspace id) ---------------------------------------------------------


class ContactAccepted(Message):
    """A row with a valid, new, callable number."""

    type: Literal["contact.accepted"] = "contact.accepted"
    batch_id: str
    contact_id: str = Field(description="Deterministic: batch id + row number. The public `jobId`.")
    row_number: int = Field(description="1-based data row; the header is line 1, so line = row + 1.")
    phone_number: str = Field(description="E.164.")
    variables: dict[str, str]


class ContactSkipped(Message):
    """A row that will never be dialed (at upload, or at dial time for a do-not-call entry)."""

    type: Literal["contact.skipped"] = "contact.skipped"
    batch_id: str
    contact_id: str
    row_number: int
    phone_number: str = Field(description="E.164 when it parsed, else the raw cell.")
    reason: SkipReason
    detail: str = ""
    variables: dict[str, str] = Field(default_factory=dict)


# --- call requests (topic `call-requests`, key: attempt id) ------------------------------------------------


class CallRequested(Message):
    """One attempt to dial one contact. The dialer claims `attempt_id` before dialing."""

    type: Literal["call.requested"] = "call.requested"
    batch_id: str
    contact_id: str
    attempt_id: str
    attempt_number: int
    phone_number: str
    variables: dict[str, str]
    agent: AgentSnapshot
    lease_expires_at: AwareDatetime = Field(
        description="When the dispatcher frees the slot if no end event came."
    )
    not_before: AwareDatetime | None = Field(
        default=None,
        description="The planned start: the dialer starts the call at this time, or later up to "
        "`start_by`, or not at all (it then ends the attempt as a system error, "
        "provider code `slot_missed`). Absent: start at once (requests from before start slots).",
    )
    start_by: AwareDatetime | None = Field(
        default=None,
        description="The latest start the slot allows (from `not_before` to here; docs/adr/0024). "
        "Absent: `not_before` plus START_TOLERANCE_SECONDS.",
    )


# --- call events (topic `call-events`, key: workspace id) --------------------------------------------------


class _CallEvent(Message):
    batch_id: str
    contact_id: str
    attempt_id: str
    attempt_number: int


class CallStarted(_CallEvent):
    type: Literal["call.started"] = "call.started"
    phone_number: str
    provider: str


class CallRinging(_CallEvent):
    type: Literal["call.ringing"] = "call.ringing"


class CallAnswered(_CallEvent):
    type: Literal["call.answered"] = "call.answered"
    answered_by: Literal["human", "machine", "unknown"] = "unknown"


class CallEnded(_CallEvent):
    type: Literal["call.ended"] = "call.ended"
    outcome: Outcome
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    duration_seconds: float = Field(ge=0, description="Talk time: answer to hang-up; 0 if never answered.")
    billable: bool
    provider: str
    provider_code: str | None = None
    provider_reason: str | None = None


# --- dispatch events (topic `dispatch-events`, key: workspace id) ------------------------------------------


class RetryScheduled(Message):
    type: Literal["retry.scheduled"] = "retry.scheduled"
    batch_id: str
    contact_id: str
    next_attempt_number: int
    due_at: AwareDatetime
    after_outcome: Outcome


class ContactFinished(Message):
    """A contact reached its final outcome: no more attempts."""

    type: Literal["contact.finished"] = "contact.finished"
    batch_id: str
    contact_id: str
    outcome: Outcome
    attempts: int


class ContactCancelled(Message):
    type: Literal["contact.cancelled"] = "contact.cancelled"
    batch_id: str
    contact_id: str


class BatchCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    total: int
    completed: int
    failed: int
    cancelled: int
    skipped: int


class BatchStarted(Message):
    type: Literal["batch.started"] = "batch.started"
    batch_id: str


class BatchPaused(Message):
    type: Literal["batch.paused"] = "batch.paused"
    batch_id: str


class BatchResumed(Message):
    type: Literal["batch.resumed"] = "batch.resumed"
    batch_id: str


class BatchCancelled(Message):
    type: Literal["batch.cancelled"] = "batch.cancelled"
    batch_id: str
    counts: BatchCounts


class BatchCompleted(Message):
    type: Literal["batch.completed"] = "batch.completed"
    batch_id: str
    counts: BatchCounts


AnyMessage = Annotated[
    (
        BatchAccepted
        | BatchIngested
        | CancelBatch
        | PauseBatch
        | ResumeBatch
        | ContactAccepted
        | ContactSkipped
        | CallRequested
        | CallStarted
        | CallRinging
        | CallAnswered
        | CallEnded
        | RetryScheduled
        | ContactFinished
        | ContactCancelled
        | BatchStarted
        | BatchPaused
        | BatchResumed
        | BatchCancelled
        | BatchCompleted
    ),
    Field(discriminator="type"),
]

_any_message: TypeAdapter[AnyMessage] = TypeAdapter(AnyMessage)


def decode(body: bytes | str) -> AnyMessage:
    """Decode any message body from the wire (raises `pydantic.ValidationError` on a bad one)."""
    return _any_message.validate_json(body)


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def message_types() -> dict[str, type[Message]]:
    """Every message type by its discriminator, for documentation and golden tests."""
    union = get_args(AnyMessage)[0]
    return {str(cls.model_fields["type"].default): cls for cls in get_args(union)}
