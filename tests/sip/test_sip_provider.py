"""Each far-end behaviour a trunk shows, played by sipp, and the outcome the SIP provider reports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from dialer.adapters.sip_provider import SipProvider
from dialer.domain.call import AnsweredBy, CallResult, OutboundCall
from dialer.handlers import Dialer, DialPolicy
from dialer.ports import NoMetrics
from shared.events import CallAnswered, CallEnded, CallRinging, CallStarted
from shared.outcomes import Outcome

from .conftest import Sipp, now

pytestmark = pytest.mark.sip


class Progress:
    def __init__(self) -> None:
        self.rang = False
        self.answered_by: AnsweredBy | None = None
        self.picked_up = asyncio.Event()

    def ringing(self) -> None:
        self.rang = True

    def answered(self, answered_by: AnsweredBy) -> None:
        self.answered_by = answered_by
        self.picked_up.set()


def outbound(far_end: Sipp, *, max_seconds: float = 30.0, ring_timeout: float = 20.0) -> OutboundCall:
    return OutboundCall(
        attempt_id="batch_sip_r1_a1",
        to=far_end.uri,
        prompt="Hello Ada",
        agent_id="agent_sip",
        caller_id="+12025550199",
        max_call_seconds=max_seconds,
        ring_timeout_seconds=ring_timeout,
    )


async def place(provider: SipProvider, call: OutboundCall) -> tuple[CallResult, Progress]:
    progress = Progress()
    return await provider.place_call(call, progress), progress


async def test_answered_then_hung_up_by_us_at_the_maximum_duration(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    far_end = sipp("answer_wait_bye")
    result, progress = await place(sip_provider, outbound(far_end, max_seconds=1.0))
    assert result.outcome is Outcome.COMPLETED and result.billable
    assert progress.rang and progress.answered_by == "unknown"
    assert result.provider_code == "200" and "maximum call duration" in (result.provider_reason or "")
    assert result.talk_seconds >= 1.0
    assert far_end.finished_ok(), far_end.errors()  # it received our BYE and answered it


async def test_answered_then_hung_up_by_the_far_end(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    far_end = sipp("answer_then_far_bye")
    result, _ = await place(sip_provider, outbound(far_end, max_seconds=60.0))
    assert result.outcome is Outcome.COMPLETED and result.billable
    assert result.provider_reason == "far end hung up (BYE)"
    assert 0 < result.talk_seconds < 60.0
    assert far_end.finished_ok(), far_end.errors()  # our 200 to its BYE arrived


@pytest.mark.parametrize(
    ("scenario", "outcome", "code"),
    [
        ("busy", Outcome.BUSY, "486"),
        ("unreachable", Outcome.UNREACHABLE, "480"),
        ("not_found", Outcome.UNREACHABLE, "404"),
        ("blocked", Outcome.CARRIER_BLOCKED, "603"),
        ("forbidden", Outcome.CARRIER_BLOCKED, "403"),
    ],
)
async def test_final_responses_map_to_outcomes(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp], scenario: str, outcome: Outcome, code: str
) -> None:
    far_end = sipp(scenario)
    result, progress = await place(sip_provider, outbound(far_end))
    assert (result.outcome, result.provider_code) == (outcome, code)
    assert not result.billable and not result.connected and not progress.rang
    assert far_end.finished_ok(), far_end.errors()  # it received our ACK of its final response


async def test_long_ringing_is_cancelled_at_the_ring_timeout(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    far_end = sipp("ring_until_cancel")
    result, progress = await place(sip_provider, outbound(far_end, ring_timeout=1.0))
    assert result.outcome is Outcome.NO_ANSWER and not result.billable
    assert progress.rang and result.provider_code == "487"
    assert far_end.finished_ok(), far_end.errors()  # CANCEL, 200, 487, ACK: the whole exchange


async def test_a_peer_that_never_answers_is_a_system_error(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    far_end = sipp("silent")
    result, progress = await place(sip_provider, outbound(far_end, ring_timeout=30.0))
    assert result.outcome is Outcome.SYSTEM_ERROR and not result.billable
    assert result.provider_code == "408" and not progress.rang


async def test_cancelling_an_answered_call_sends_bye(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    far_end = sipp("answer_wait_bye")
    progress = Progress()
    task = asyncio.create_task(sip_provider.place_call(outbound(far_end, max_seconds=3600.0), progress))
    async with asyncio.timeout(30):
        await progress.picked_up.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert far_end.finished_ok(), far_end.errors()


async def test_the_dialer_reports_a_sip_call_as_events(
    sip_provider: SipProvider, sipp: Callable[[str], Sipp]
) -> None:
    from tests.unit.dialer.fakes import FakeEvents, FakeStore, request

    far_end = sipp("answer_then_far_bye")
    events = FakeEvents()
    dialer = Dialer(
        store=FakeStore(),
        events=events,
        provider=sip_provider,
        metrics=NoMetrics(),
        clock=now,
        new_token=lambda: "token",
        policy=DialPolicy(ring_timeout_seconds=10.0),
    )
    await asyncio.gather(*(await dialer.handle([request(phone=far_end.uri)])))
    assert [type(e) for e in events.sent] == [CallStarted, CallRinging, CallAnswered, CallEnded]
    ended: Any = events.sent[-1]
    assert ended.outcome is Outcome.COMPLETED and ended.billable and ended.provider == "sip"
    assert ended.duration_seconds > 0 and ended.answered_at is not None


def test_operator_call_command_against_a_trunk(sipp: Callable[[str], Sipp]) -> None:
    far_end = sipp("busy")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialer",
            "call",
            "--provider",
            "sip",
            "--to",
            far_end.uri,
            "--ring-timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    line = json.loads(lines[0])
    assert (line["outcome"], line["provider"], line["provider_code"]) == ("busy", "sip", "486")
    assert far_end.finished_ok(), far_end.errors()
