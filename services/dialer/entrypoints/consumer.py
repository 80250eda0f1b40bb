"""The call-requests consumer: many requests in flight, offsets committed only behind finished work.

An aiokafka consumer loop rather than a faststream subscriber: the dialer holds thousands of calls at once
from a handful of partitions, so it fetches up to its free capacity, claims the whole poll in one write
(with up to four polls' writes in flight), and commits each partition up to its lowest unfinished offset
(see `offsets.py`). When full it waits for room without polling, so the records the fetcher already holds
are kept: a poll with a partition paused throws that partition's fetched records away, and resuming fetches
them again (at 2,000 calls in flight that was a refetch of up to a megabyte per partition every time the
dialer filled up). Only when full for `full_poll_seconds`, or while draining, it polls with its partitions
paused, well within the group's poll interval, so the group does not think it died.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from pydantic import ValidationError

from dialer.entrypoints.offsets import OffsetTracker
from dialer.handlers import Dialer
from shared.events import CallRequested, decode
from shared.liveness import Heartbeat
from shared.telemetry import KafkaHeaders

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
CLAIMS_IN_FLIGHT = 4
"""Polls whose claim write may be pending at once: the next poll is claimed while the database answers."""
ROOM_WAIT_SECONDS = 0.05
"""While full, how long the loop waits before looking for room again (and how many calls free up meanwhile,
so the next poll still claims a batch rather than one request at a time)."""
FULL_POLL_SECONDS = 10.0
"""While full, a paused poll this often keeps the group membership alive (`max_poll_interval_ms` >= 300 s)."""
COMMIT_SECONDS = 30.0
"""How long one offset commit may take. aiokafka retries a commit while the group has no coordinator, with
no end; bounded, a stuck commit is logged and retried at the next interval (the offsets stay uncommitted,
which the claim rule makes safe) and a shutdown still leaves the group."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: CallRequestConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.commit(revoked)
        self._owner.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(str(tp.partition) for tp in assigned)})


class CallRequestConsumer:
    """Feeds `CallRequested` messages to the dialer within `max_active` at once."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        dialer: Dialer,
        *,
        max_active: int,
        poll_max_records: int,
        commit_interval_seconds: float,
        stall_seconds: float = 300.0,
        full_poll_seconds: float = FULL_POLL_SECONDS,
    ) -> None:
        self._consumer = consumer
        self._topic = topic
        self._dialer = dialer
        self._max_active = max_active
        self._poll_max = poll_max_records
        self._commit_interval = commit_interval_seconds
        self.tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._taking = True
        self._stopped = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._last_commit = time.monotonic()
        self._full_poll_seconds = full_poll_seconds
        self._last_poll = time.monotonic()
        self._handlings: set[asyncio.Future[None]] = set()
        self._claiming: set[asyncio.Task[None]] = set()
        self.heartbeat = Heartbeat("call-requests consumer", stall_seconds=stall_seconds)
        """Fails /healthz when the poll loop died or stopped going round."""

    async def start(self) -> None:
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        await self._consumer.start()
        self._loop_task = asyncio.create_task(self._run(), name="call-requests consumer")
        self.heartbeat.watch(self._loop_task)

    def stop_taking(self) -> None:
        """Stop claiming new requests; keep the group membership so in-flight offsets can be committed."""
        self._taking = False

    async def stop(self) -> None:
        """Commit what finished and leave the group. Call after the dialer drained."""
        self._taking = False
        self._stopped.set()
        self.heartbeat.stop()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._claiming:
            await asyncio.gather(*self._claiming, return_exceptions=True)
        try:
            await self.commit()
        finally:
            await self._consumer.stop()

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        positions = self.tracker.committable(partitions)
        if not positions:
            return
        try:
            async with asyncio.timeout(COMMIT_SECONDS):
                await self._consumer.commit(positions)
            self.tracker.mark_committed(positions)
        except Exception:
            log.warning("offset commit failed; will retry", exc_info=True)

    async def _run(self) -> None:
        while not self._stopped.is_set():
            self.heartbeat.beat()
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call-requests poll failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
            if time.monotonic() - self._last_commit >= self._commit_interval:
                self._last_commit = time.monotonic()
                await self.commit()

    async def _poll_once(self) -> None:
        free = self._max_active - self.tracker.in_flight
        assigned = self._consumer.assignment()
        if not self._taking or free <= 0 or len(self._claiming) >= CLAIMS_IN_FLIGHT:
            if self._taking and time.monotonic() - self._last_poll < self._full_poll_seconds:
                await asyncio.sleep(ROOM_WAIT_SECONDS)
                return
            if assigned:
                self._consumer.pause(*assigned)
            self._last_poll = time.monotonic()
            await self._consumer.getmany(timeout_ms=100)
            return
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)
        self._last_poll = time.monotonic()
        batches = await self._consumer.getmany(timeout_ms=200, max_records=min(free, self._poll_max))
        requests: list[CallRequested] = []
        headers: list[KafkaHeaders] = []
        positions: list[tuple[TopicPartition, int]] = []
        for tp, records in batches.items():
            for record in records:
                self.tracker.started(tp, record.offset)
                message = _decode(record.value)
                if message is None:
                    self.tracker.finished(tp, record.offset)
                    continue
                requests.append(message)
                headers.append(record.headers)
                positions.append((tp, record.offset))
        if requests:
            task = asyncio.create_task(self._claim(requests, headers, positions))
            self._claiming.add(task)
            task.add_done_callback(self._claiming.discard)

    async def _claim(
        self,
        requests: list[CallRequested],
        headers: list[KafkaHeaders],
        positions: list[tuple[TopicPartition, int]],
    ) -> None:
        handled = await self._handle(requests, headers)
        if handled is None:  # stopping while the store is down: left uncommitted for the next owner
            return
        for (tp, offset), awaitable in zip(positions, handled, strict=True):
            self._watch(tp, offset, awaitable)

    async def _handle(
        self, requests: list[CallRequested], headers: list[KafkaHeaders]
    ) -> list[Awaitable[None]] | None:
        # Nothing was dialed when a claim fails; the same requests are retried until the store answers.
        while self._taking:
            try:
                return await self._dialer.handle(requests, headers)
            except Exception:
                log.exception("claiming call requests failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
        return None

    def _watch(self, tp: TopicPartition, offset: int, awaitable: Awaitable[None]) -> None:
        future = asyncio.ensure_future(awaitable)
        self._handlings.add(future)

        def finished(done: asyncio.Future[None]) -> None:
            self._handlings.discard(done)
            if not done.cancelled() and done.exception() is not None:
                # The outcome could not be stored or published; the claim stays without one, so a
                # redelivery will not dial again, and the dispatcher's lease expiry retries the contact.
                log.error("handling a call request failed", exc_info=done.exception())
            self.tracker.finished(tp, offset)

        future.add_done_callback(finished)


def _decode(body: bytes | None) -> CallRequested | None:
    if body is None:
        return None
    try:
        message: Any = decode(body)
    except ValidationError:
        log.error("undecodable message on call-requests; skipped")
        return None
    if not isinstance(message, CallRequested):
        log.error("unexpected message type on call-requests; skipped", extra={"type": message.type})
        return None
    return message
