"""The `simulated` provider: plays out the domain's seeded call plans in (scaled) real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from dialer.domain.call import CallResult, OutboundCall
from dialer.domain.simulation import CallSimulator
from dialer.ports import CallProgress


class SimulatedProvider:
    """No network. `time_scale` stretches every phase: 1 is real time, 0.1 ten times faster, 0 instant.

    Reported talk time is the simulated one (what the call would have lasted), whatever the time scale,
    so a fast demo still shows realistic durations; event timestamps are real.
    """

    def __init__(self, simulator: CallSimulator, *, time_scale: float, clock: Callable[[], datetime]) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._simulator = simulator
        self._scale = time_scale
        self._clock = clock

    @property
    def name(self) -> str:
        return "simulated"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def _elapse(self, seconds: float) -> None:
        if self._scale > 0 and seconds > 0:
            await asyncio.sleep(seconds * self._scale)

    async def place_call(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        plan = self._simulator.plan(call)
        await self._elapse(plan.setup_seconds)
        if plan.rings:
            progress.ringing()
            await self._elapse(plan.ring_seconds)
        answered_at = None
        if plan.answered:
            answered_at = self._clock()
            progress.answered(plan.answered_by)
            await self._elapse(plan.talk_seconds)
        return CallResult(
            outcome=plan.outcome,
            answered_at=answered_at,
            ended_at=self._clock(),
            talk_seconds=plan.talk_seconds,
            answered_by=plan.answered_by,
            provider_code=plan.provider_code,
            provider_reason=plan.provider_reason,
        )
