"""In-memory fakes of the dialer's ports, with the same claim semantics as the Mongo store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.domain.call import CallResult, OutboundCall
from dialer.ports import CallProgress, Claim, ClaimStatus
from shared.events import AgentSnapshot, CallEnded, CallRequested, Message
from shared.outcomes import Outcome

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class FakeStore:
    """Claims keyed by attempt id: the first insert wins, like a unique `_id`."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.fail_claims = False

    async def claim(self, requests: Sequence[CallRequested], *, token: str, at: datetime) -> list[Claim]:
        await asyncio.sleep(0)
        if self.fail_claims:
            raise ConnectionError("store down")
        results = []
        for request in requests:
            doc = self.docs.get(request.attempt_id)
            if doc is None:
                self.docs[request.attempt_id] = {"token": token, "ended": None}
                results.append(Claim(request.attempt_id, ClaimStatus.CLAIMED))
            elif doc["ended"] is not None:
                results.append(Claim(request.attempt_id, ClaimStatus.ENDED, doc["ended"]))
            else:
                results.append(Claim(request.attempt_id, ClaimStatus.HELD))
        return results

    async def record_outcome(self, ended: CallEnded, *, token: str) -> None:
        await asyncio.sleep(0)
        doc = self.docs[ended.attempt_id]
        assert doc["token"] == token, "only the claim's owner writes its outcome"
        doc["ended"] = ended


class FakeEvents:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def emit(self, event: Message) -> None:
        self.sent.append(event)

    def emit_confirmed(self, event: Message) -> asyncio.Future[None]:
        self.sent.append(event)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def of(self, kind: type[Message]) -> list[Any]:
        return [e for e in self.sent if isinstance(e, kind)]


@dataclass
class ScriptedProvider:
    """Answers every call the same way, after `hold` real seconds; records what it was asked."""

    result: CallResult = field(default_factory=lambda: CallResult(Outcome.BUSY, provider_code="486"))
    hold: float = 0.0
    ring: bool = False
    answer: bool = False
    fail: Exception | None = None
    calls: list[OutboundCall] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "scripted"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def place_call(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail
        if self.ring:
            progress.ringing()
        if self.answer:
            progress.answered("human")
        try:
            await asyncio.sleep(self.hold)
        except asyncio.CancelledError:
            self.hung_up.append(call.attempt_id)
            raise
        return self.result


def agent(**overrides: Any) -> AgentSnapshot:
    fields: dict[str, Any] = {
        "agent_id": "agent_1",
        "name": "Reminder",
        "prompt_template": "Hi {first_name}, about {topic}.",
        "variables": ("first_name", "topic"),
        "defaults": {"topic": "your appointment"},
        "max_call_seconds": 120,
    }
    fields.update(overrides)
    return AgentSnapshot(**fields)


def request(
    row: int = 1, attempt: int = 1, *, phone: str = "+12025550100", **agent_overrides: Any
) -> CallRequested:
    contact = f"batch_abc_r{row}"
    return CallRequested(
        occurred_at=T0,
        workspace_id="ws_1",
        correlation_id="batch_abc",
        batch_id="batch_abc",
        contact_id=contact,
        attempt_id=f"{contact}_a{attempt}",
        attempt_number=attempt,
        phone_number=phone,
        variables={"first_name": "Ada"},
        agent=agent(**agent_overrides),
        lease_expires_at=T0 + timedelta(minutes=15),
    )
