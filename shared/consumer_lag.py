"""Consumer lag as a Prometheus gauge: how many messages of a topic a consumer group has not committed yet.

Measured from outside the consumer (the group's committed offsets against the topics' end offsets), so it
works the same for faststream subscribers and plain aiokafka consumers, and keeps reporting while a
consumer is stuck. Every replica of a service reports its whole group; dashboards take `max by (group,
topic)`. KEDA scales the dialers on the same quantity for `call-requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

from shared.settings import InfraSettings
from shared.topics import Topic

CONSUMER_LAG = Gauge(
    "batchcalls_kafka_consumer_lag",
    "Messages of a topic not yet committed by a consumer group (sum over partitions).",
    ["group", "topic"],
)

_log = logging.getLogger(__name__)


class ConsumerLagMonitor:
    """Measures one group's lag on its topics every `interval_seconds`; started and stopped in a lifespan."""

    def __init__(
        self, infra: InfraSettings, group: str, topics: Sequence[Topic], *, interval_seconds: float = 15.0
    ) -> None:
        self._infra = infra
        self._group = group
        self._topics = tuple(topics)
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        for topic in self._topics:  # exported as 0 from the start, not only after the first measurement
            CONSUMER_LAG.labels(group, topic.value).set(0)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The admin client and offset probe, made on first use and kept: made anew for every measurement,
        each took a connection, a metadata round and a bootstrap on the broker (a benchmark sampling three
        groups every second spent more CPU on that than its services spent consuming some topics)."""
        if self._admin is None or self._probe is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._infra.kafka_bootstrap)
            probe = AIOKafkaConsumer(bootstrap_servers=self._infra.kafka_bootstrap, enable_auto_commit=False)
            try:
                await admin.start()
                await probe.start()
            except BaseException:
                await _close(admin, probe)
                raise
            self._admin, self._probe = admin, probe
        return self._admin, self._probe

    async def close(self) -> None:
        """Closes the kept clients (the next measurement makes new ones)."""
        admin, probe, self._admin, self._probe = self._admin, self._probe, None, None
        await _close(admin, probe)

    async def measure_once(self) -> dict[Topic, int]:
        """The group's current lag per topic; a partition without a committed offset counts from its start.
        A failed measurement drops the clients, so the next one reconnects from scratch."""
        try:
            return await self._measure()
        except BaseException:
            await self.close()
            raise

    async def _measure(self) -> dict[Topic, int]:
        admin, probe = await self._clients()
        committed = await admin.list_consumer_group_offsets(self._group)
        names = {topic: topic.name_with(self._infra.topic_prefix) for topic in self._topics}
        described = await admin.describe_topics(list(names.values()))
        partition_ids = {
            d["topic"]: sorted(p["partition"] for p in d["partitions"])
            for d in described
            if d.get("error_code", 0) == 0
        }
        lags: dict[Topic, int] = {}
        for topic, name in names.items():
            partitions = [TopicPartition(name, p) for p in partition_ids.get(name, ())]
            if not partitions:
                continue
            ends = await probe.end_offsets(partitions)
            starts = await probe.beginning_offsets(partitions)
            lag = 0
            for tp in partitions:
                done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp]
                lag += max(0, ends[tp] - done)
            lags[topic] = lag
            CONSUMER_LAG.labels(self._group, topic.value).set(lag)
        return lags

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-lag-{self._group}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.measure_once()
            except Exception:  # a metric must never take its service down; the next round retries
                _log.warning("consumer lag measurement failed", extra={"group": self._group}, exc_info=True)
            await asyncio.sleep(self._interval)


async def _close(admin: AIOKafkaAdminClient | None, probe: AIOKafkaConsumer | None) -> None:
    # Best effort: a client that failed to start may not close cleanly either.
    if probe is not None:
        with contextlib.suppress(Exception):
            await probe.stop()
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()
