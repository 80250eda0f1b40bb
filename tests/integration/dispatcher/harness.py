"""Test doubles around the dispatcher, against the real broker: a collector of a topic's messages, and a
fake dialer that turns CallRequested into CallStarted + CallEnded with a chosen outcome and duration, started
at the request's planned start (`not_before`), as the real dialer does.

The fake dialer is a test double (clearly not the product's dialer): it claims each attempt id once, like
the real dialer's durable claim, and records what it saw so tests can check the invariants."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import CallEnded, CallRequested, CallStarted, Message, decode
from shared.kafka import EventPublisher
from shared.outcomes import Outcome
from shared.settings import InfraSettings
from shared.topics import Topic

WAIT = 120.0


class Collector:
    """Every message on one topic of the session, from the beginning, collected in the background."""

    def __init__(self, infra: InfraSettings, topic: Topic) -> None:
        self._infra = infra
        self._topic = topic
        self.messages: list[tuple[float, Message]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        name = self._topic.name_with(self._infra.topic_prefix)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._infra.kafka_bootstrap, enable_auto_commit=False
        )
        await self._consumer.start()
        tps = [TopicPartition(name, p) for p in range(self._topic.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            polled = await self._consumer.getmany(timeout_ms=200)
            for records in polled.values():
                for record in records:
                    self.messages.append((time.time(), decode(record.value)))
            if polled:
                self._changed.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    def of(self, kind: type[Message], batch_id: str | None = None) -> list[Message]:
        return [
            m
            for _, m in self.messages
            if isinstance(m, kind) and (batch_id is None or m.correlation_id == batch_id)
        ]

    async def wait_for(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))


OutcomeRule = Callable[[CallRequested], Outcome]


@dataclass
class FakeDialer:
    """Consumes call requests (its own group), claims each attempt id once, places a pretend call."""

    infra: InfraSettings
    outcome: OutcomeRule = lambda _: Outcome.COMPLETED
    duration: Callable[[], float] = lambda: 0.2
    requests: list[tuple[float, CallRequested]] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    starts: list[tuple[float, str]] = field(default_factory=list)
    active: dict[str, set[str]] = field(default_factory=dict)
    max_active: dict[str, int] = field(default_factory=dict)
    answer: bool = True
    """False: never send an end event (the dispatcher's lease must expire)."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._publisher = EventPublisher(self.infra, "fake-dialer")
        await self._publisher.start()
        self._consumer = AIOKafkaConsumer(
            Topic.CALL_REQUESTS.name_with(self.infra.topic_prefix),
            bootstrap_servers=self.infra.kafka_bootstrap,
            group_id=f"{self.infra.topic_prefix}fake-dialer-{uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for task in list(self._tasks):
            task.cancel()
        await self._consumer.stop()
        await self._publisher.stop()

    async def _run(self) -> None:
        while True:
            polled = await self._consumer.getmany(timeout_ms=100)
            for records in polled.values():
                for record in records:
                    request = decode(record.value)
                    assert isinstance(request, CallRequested)
                    self.requests.append((time.time(), request))
                    if request.attempt_id in self.claimed:
                        continue  # the durable claim: one attempt id is dialed at most once
                    self.claimed.add(request.attempt_id)
                    task = asyncio.create_task(self._call(request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _call(self, request: CallRequested) -> None:
        if request.not_before is not None:
            await asyncio.sleep(max(0.0, (request.not_before - datetime.now(UTC)).total_seconds()))
        now = datetime.now(UTC)
        self.starts.append((time.time(), request.attempt_id))
        ws = request.workspace_id
        self.active.setdefault(ws, set()).add(request.attempt_id)
        self.max_active[ws] = max(self.max_active.get(ws, 0), len(self.active[ws]))
        base = {
            "occurred_at": now,
            "workspace_id": ws,
            "correlation_id": request.batch_id,
            "batch_id": request.batch_id,
            "contact_id": request.contact_id,
            "attempt_id": request.attempt_id,
            "attempt_number": request.attempt_number,
        }
        await self._publisher.publish(CallStarted(**base, phone_number=request.phone_number, provider="fake"))
        await asyncio.sleep(self.duration())
        outcome = self.outcome(request)
        self.active[ws].discard(request.attempt_id)
        if not self.answer:
            return
        await self._publisher.publish(
            CallEnded(
                **{**base, "occurred_at": datetime.now(UTC)},
                outcome=outcome,
                started_at=now,
                duration_seconds=0.0,
                billable=outcome.billable,
                provider="fake",
            )
        )

    def dials(self, batch_id: str | None = None) -> list[CallRequested]:
        return [r for _, r in self.requests if batch_id is None or r.batch_id == batch_id]


def random_duration(low: float, high: float, seed: int = 7) -> Callable[[], float]:
    rng = random.Random(seed)
    return lambda: rng.uniform(low, high)


def planned_starts(requests: list[CallRequested]) -> list[float]:
    """Each distinct attempt's planned start (its request time if it carries none)."""
    first: dict[str, float] = {}
    for r in requests:
        first.setdefault(r.attempt_id, (r.not_before or r.occurred_at).timestamp())
    return list(first.values())


def max_in_window(times: list[float], span: float = 1.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > span:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
