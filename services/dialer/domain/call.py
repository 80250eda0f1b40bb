"""One outbound call as the provider sees it, and what the provider reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from shared.events import SLOT_MISSED
from shared.outcomes import Outcome

AnsweredBy = Literal["human", "machine", "unknown"]


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """What a provider needs to place one attempt: who to call and what the agent should say."""

    attempt_id: str
    to: str
    """E.164 number, or a full `sip:` URI for the SIP provider."""
    prompt: str
    """The agent's prompt rendered with this contact's variables."""
    variables: dict[str, str] = field(default_factory=dict)
    agent_id: str = ""
    caller_id: str | None = None
    max_call_seconds: float = 600.0
    """Talk time limit: the provider hangs up when it is reached (outcome completed)."""
    ring_timeout_seconds: float = 30.0
    """How long to ring before giving up (SIP: CANCEL); outcome no_answer."""


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended, in provider-neutral terms plus the provider's own code and reason."""

    outcome: Outcome
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    talk_seconds: float = 0.0
    """Answer to hang-up; 0 when never answered."""
    answered_by: AnsweredBy = "unknown"
    provider_code: str | None = None
    provider_reason: str | None = None

    @property
    def connected(self) -> bool:
        return self.answered_at is not None

    @property
    def billable(self) -> bool:
        """Charged only when the outcome is a billable one and the call really connected."""
        return self.outcome.billable and self.connected


def aborted(reason: str, *, ended_at: datetime | None = None) -> CallResult:
    """A call the dialer had to end itself (shutdown drain timeout, provider failure): a system error.

    It carries no answer time even if the far end had picked up, so it is never billed: the dispatcher
    retries a system error, and the customer is not charged for a call we cut.
    """
    return CallResult(
        outcome=Outcome.SYSTEM_ERROR,
        ended_at=ended_at,
        provider_code="dialer_abort",
        provider_reason=reason,
    )


def slot_missed(reason: str, *, ended_at: datetime) -> CallResult:
    """A request that reached the dialer too late for its start slot and was not dialed: a system error
    (never billed, no attempt of the contact's budget) that the dispatcher plans again at once."""
    return CallResult(
        outcome=Outcome.SYSTEM_ERROR,
        ended_at=ended_at,
        provider_code=SLOT_MISSED,
        provider_reason=reason,
    )
