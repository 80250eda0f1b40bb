"""The dialer's ports: what the use cases need from telephony, storage, the event bus and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dialer.domain.call import AnsweredBy, CallResult, OutboundCall
from shared.events import CallEnded, CallRequested, Message
from shared.outcomes import Outcome


class CallProgress(Protocol):
    """What a provider reports while a call is in progress (called on the event loop)."""

    def ringing(self) -> None: ...

    def answered(self, answered_by: AnsweredBy) -> None: ...


class TelephonyProvider(Protocol):
    """Places calls. One instance serves many concurrent calls."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def place_call(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        """Dial, report progress, hang up at `call.max_call_seconds`, and say how it ended.

        When cancelled, the provider ends the call on the network (BYE or CANCEL) before re-raising.
        """
        ...


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"
    """This dialer now owns the attempt: dial it."""
    ENDED = "ended"
    """Already dialed and finished: re-emit the stored end event, never dial again."""
    HELD = "held"
    """Claimed before and not finished (in progress elsewhere, or its dialer died): leave it alone; the
    dispatcher's lease expiry retries it as a new attempt."""


@dataclass(frozen=True, slots=True)
class Claim:
    attempt_id: str
    status: ClaimStatus
    ended: CallEnded | None = None


class AttemptStore(Protocol):
    """Durable record of every attempt a dialer claimed, and how it ended."""

    async def claim(self, requests: Sequence[CallRequested], *, token: str, at: datetime) -> list[Claim]:
        """Claim each request's attempt id atomically (one claim per id, ever); one result per request.

        `token` is unique to this call, so a store can tell its own claim from an older one. The requests
        carry distinct attempt ids.
        """
        ...

    async def record_outcome(self, ended: CallEnded, *, token: str) -> None:
        """Store the end event on the claim, durably, before it is published."""
        ...


class CallEventSink(Protocol):
    """Publishes call events in the order they are emitted (per key, hence per workspace)."""

    def emit(self, event: Message) -> None:
        """Queue `event` for publishing now, without waiting for the broker."""
        ...

    def emit_confirmed(self, event: Message) -> Awaitable[None]:
        """Queue `event`; the result completes when the broker acknowledged it and every event emitted
        before it with the same key (one partition, appended in order by an idempotent producer)."""
        ...


class CallMetrics(Protocol):
    def call_started(self, workspace_id: str) -> None: ...

    def call_ended(self, outcome: Outcome, duration_seconds: float) -> None: ...

    def claimed(self, status: ClaimStatus) -> None: ...

    def active(self, delta: int) -> None: ...


class NoMetrics:
    """A `CallMetrics` that records nothing (tests, the operator command)."""

    def call_started(self, workspace_id: str) -> None:
        pass

    def call_ended(self, outcome: Outcome, duration_seconds: float) -> None:
        pass

    def claimed(self, status: ClaimStatus) -> None:
        pass

    def active(self, delta: int) -> None:
        pass
