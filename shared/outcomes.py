"""The vocabulary every service agrees on: outcomes of one attempt, skip reasons and public call states."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one attempt ended (DESIGN.md, "Outcomes and retries")."""

    COMPLETED = "completed"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    INVALID_NUMBER = "invalid_number"
    CARRIER_BLOCKED = "carrier_blocked"
    OPTED_OUT = "opted_out"
    SYSTEM_ERROR = "system_error"

    @property
    def billable(self) -> bool:
        """Connected calls are charged, voicemail included; nothing else is."""
        return self in (Outcome.COMPLETED, Outcome.VOICEMAIL, Outcome.OPTED_OUT)

    @property
    def successful(self) -> bool:
        """Outcomes the public API reports as `completed`."""
        return self in (Outcome.COMPLETED, Outcome.VOICEMAIL)


class SkipReason(StrEnum):
    """Why a contact is never dialed."""

    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    DO_NOT_CALL = "do_not_call"


class PublicCallStatus(StrEnum):
    """Per-call status as the reference API shows it, plus `cancelled`."""

    WAITING = "waiting"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


ERROR_TEXT: dict[str, str] = {
    Outcome.NO_ANSWER: "No answer",
    Outcome.BUSY: "Number busy",
    Outcome.UNREACHABLE: "Number unreachable",
    Outcome.INVALID_NUMBER: "Invalid phone number",
    Outcome.CARRIER_BLOCKED: "Carrier blocked",
    Outcome.OPTED_OUT: "Recipient opted out",
    Outcome.SYSTEM_ERROR: "System error",
    SkipReason.DUPLICATE: "Duplicate phone number in batch",
    SkipReason.DO_NOT_CALL: "Number is on the do-not-call list",
}
"""Human error text for a failed call, keyed by outcome or skip reason (the reference shows "Number busy")."""
