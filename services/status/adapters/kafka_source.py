"""Reads every topic in one consumer and hands the projector chunks of decoded records.

Offsets are committed only after a chunk is written; on any failure the consumer rewinds to the last
commit and the projector forgets what it held, so the chunk is projected again (handlers.Projector says
why that is safe).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError

from shared.events import decode
from shared.kafka import CONSUMER_METADATA_MAX_AGE_MS
from shared.liveness import Heartbeat
from shared.settings import InfraSettings
from shared.telemetry import traceparent_of
from shared.topics import Topic
from status.ports import YIELD_EVERY, Position, Record

log = logging.getLogger(__name__)

UNDECODABLE = Counter(
    "batchcalls_status_undecodable_messages_total", "Messages the projector could not decode and skipped."
)


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaEventSource, on_change: Callable[[], None]) -> None:
        self._source = source
        self._on_change = on_change

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._on_change()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._on_change()
        # Positions are back at the committed offsets: what was polled since is delivered again.
        self._source.reassigned = True
        await self._source.replaying(assigned)


class KafkaEventSource:
    """The projector's consumer of all five topics (group `status`)."""

    def __init__(
        self,
        infra: InfraSettings,
        *,
        group_id: str,
        client_id: str,
        max_records: int,
        wait_ms: int,
        on_rebalance: Callable[[], None],
    ) -> None:
        self._prefix = infra.topic_prefix
        self._max_records = max_records
        self._wait_ms = wait_ms
        self._on_rebalance = on_rebalance
        self._options: dict[str, Any] = {
            "bootstrap_servers": infra.kafka_bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": max_records,
            "fetch_max_bytes": 16 * 1024 * 1024,
            "max_partition_fetch_bytes": 2 * 1024 * 1024,
            "metadata_max_age_ms": CONSUMER_METADATA_MAX_AGE_MS,
        }
        self._consumer_: AIOKafkaConsumer | None = None
        self._names = {topic.name_with(self._prefix): topic for topic in Topic}
        self.reassigned = True
        """Set when partitions were (re)assigned: the next chunk starts at the committed offsets."""
        self._replayed: Callable[[], Awaitable[None]] | None = None

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._consumer_ is None:
            raise RuntimeError("the event source is not started")
        return self._consumer_

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the consumer is made here, not in the composition root.
        self._consumer_ = AIOKafkaConsumer(**self._options)
        await self._consumer.start()
        self._consumer.subscribe(list(self._names), listener=_Forget(self, self._on_rebalance))

    async def stop(self) -> None:
        await self._consumer.stop()

    def replay_from_start(self, replayed: Callable[[], Awaitable[None]]) -> None:
        """Read every topic from its beginning instead of the committed offsets (the read models were
        dropped), until a chunk is committed; then `replayed` is awaited. Call before `start`."""
        self._replayed = replayed

    async def replaying(self, assigned: Sequence[TopicPartition]) -> None:
        """After an assignment during a replay: back to the beginning (nothing of it is committed yet)."""
        if self._replayed is not None and assigned:
            await self._consumer.seek_to_beginning(*assigned)

    @property
    def max_records(self) -> int:
        return self._max_records

    async def poll(self) -> list[Record]:
        """The next chunk (possibly empty), across partitions, each partition in order."""
        batches = await self._consumer.getmany(timeout_ms=self._wait_ms, max_records=self._max_records)
        records: list[Record] = []
        texts: dict[bytes, str] = {}
        decoded_since_yield = 0
        for tp, messages in batches.items():
            topic = self._names.get(tp.topic)
            name = topic.value if topic else tp.topic
            for message in messages:
                decoded_since_yield += 1
                if decoded_since_yield == YIELD_EVERY:
                    decoded_since_yield = 0
                    await asyncio.sleep(0)
                try:
                    decoded = decode(message.value)
                except ValidationError:
                    UNDECODABLE.inc()
                    log.warning(
                        "undecodable message skipped", extra={"topic": tp.topic, "offset": message.offset}
                    )
                    continue
                records.append(
                    Record(
                        decoded,
                        Position(f"{name}:{tp.partition}", message.offset),
                        traceparent_of(message.headers, texts),
                    )
                )
        return records

    def _partition(self, tp: TopicPartition) -> str:
        topic = self._names.get(tp.topic)
        return f"{topic.value if topic else tp.topic}:{tp.partition}"

    async def reached(self, horizon: dict[str, int]) -> bool:
        """Whether every assigned partition has been polled past its offset in `horizon`."""
        for tp in self._consumer.assignment():
            offset = horizon.get(self._partition(tp))
            if offset is not None and await self._consumer.position(tp) <= offset:
                return False
        return True

    async def ready(self) -> None:
        """Raises unless the broker answers (readiness)."""
        await self._consumer.topics()

    async def commit(self) -> None:
        await self._consumer.commit()
        if self._replayed is not None:
            replayed, self._replayed = self._replayed, None
            await replayed()

    async def rewind(self) -> None:
        """Back to the last committed offsets (after a failed write); during a replay, to the beginning."""
        for tp in self._consumer.assignment():
            committed = None if self._replayed is not None else await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)


async def next_chunk(source: KafkaEventSource, *, catchup_records: int, catchup_ms: int) -> list[Record]:
    """One poll's records; while polls come back full (the projector is behind, e.g. replaying history),
    more polls join the chunk — up to `catchup_records` or `catchup_ms` — so each call document is
    written fewer times. Caught up, a chunk is one poll, which keeps the read models fresh."""
    records = await source.poll()
    started = time.monotonic()
    while (
        len(records) % source.max_records == 0
        and records
        and len(records) < catchup_records
        and (time.monotonic() - started) * 1000 < catchup_ms
    ):
        more = await source.poll()
        records.extend(more)
        if len(more) < source.max_records:
            break
    return records


async def run_projection(
    source: KafkaEventSource,
    project: Callable[[Sequence[Record]], Awaitable[object]],
    forget: Callable[[], None],
    stopping: asyncio.Event,
    *,
    catchup_records: int = 50_000,
    catchup_ms: int = 3_000,
    retry_seconds: float = 1.0,
    heartbeat: Heartbeat | None = None,
    horizon: Callable[[], Awaitable[dict[str, int]]] | None = None,
) -> None:
    """Polls, projects, commits — until `stopping` is set. Beats `heartbeat` once per round, so a round that
    never ends shows as a stalled projector.

    A chunk whose projection or commit failed is projected again as it was (the same records, after the
    projector forgot what it held) until it succeeds: a different chunk could miss events the batch records
    already count (handlers.Projector). After an assignment (the start, a rebalance) the positions are
    back at the committed offsets and the first chunk polls on until it passes `horizon` — the offsets
    the batch records hold — for the same reason. If polling itself fails part-way, the consumer goes back
    to the committed offsets and gathers the chunk again."""
    pending: list[Record] | None = None
    rewind = False
    while not stopping.is_set():
        if heartbeat is not None:
            heartbeat.beat()
        try:
            if pending is None:
                if rewind:
                    await source.rewind()
                    source.reassigned, rewind = True, False
                records = await next_chunk(source, catchup_records=catchup_records, catchup_ms=catchup_ms)
                if source.reassigned and horizon is not None:
                    source.reassigned = False
                    until = await horizon()
                    while not await source.reached(until):
                        if heartbeat is not None:
                            heartbeat.beat()
                        records.extend(await source.poll())
                source.reassigned = False
                pending = records
            if pending:
                await project(pending)
                await source.commit()
            pending = None
        except asyncio.CancelledError:
            raise
        except Exception:
            if pending is None:
                log.exception("polling failed; going back to the last commit")
                rewind = True
            else:
                log.exception("projection failed; projecting the same records again")
            forget()
            await asyncio.sleep(retry_seconds)
