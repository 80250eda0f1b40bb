"""A consumer loop's heartbeat: a loop that died or stopped going round fails liveness; a stop does not."""

from __future__ import annotations

import asyncio

import pytest

from shared.liveness import Heartbeat

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_loop_that_keeps_beating_is_alive_and_one_that_stalls_is_not() -> None:
    clock = Clock()
    heartbeat = Heartbeat("loop", stall_seconds=30, clock=clock)
    clock.now = 29
    await heartbeat.check()
    heartbeat.beat()
    clock.now = 58
    assert heartbeat.problem() is None
    clock.now = 60
    with pytest.raises(RuntimeError, match="no progress for 31s"):
        await heartbeat.check()


async def test_a_loop_task_that_died_is_reported_and_the_guard_acts_once() -> None:
    async def dies() -> None:
        raise ValueError("broker said no")

    heartbeat = Heartbeat("loop", stall_seconds=300)
    task = asyncio.create_task(dies())
    heartbeat.watch(task)
    with pytest.raises(ValueError):
        await task
    assert heartbeat.problem() == "loop ended: ValueError('broker said no')"
    failures: list[str] = []
    await asyncio.wait_for(heartbeat.guard(failures.append, every_seconds=0.01), timeout=5)
    assert failures == [heartbeat.problem()]


async def test_a_deliberate_stop_is_not_a_death() -> None:
    heartbeat = Heartbeat("loop", stall_seconds=300)
    task = asyncio.create_task(asyncio.sleep(0))
    heartbeat.watch(task)
    heartbeat.stop()
    await task
    assert heartbeat.problem() is None
