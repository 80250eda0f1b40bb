"""Fixtures for the dialer against real Kafka and FerretDB: a private topic prefix and database per test
session, a publisher for call requests, a collector of call events, and dialers in-process or as
`python -m dialer` subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from dialer.config import Settings
from dialer.entrypoints.app import create_app
from shared.events import AgentSnapshot, CallEnded, CallRequested, Message, decode
from shared.kafka import EventPublisher, ensure_topics
from shared.mongo import Document, make_client
from shared.settings import InfraSettings
from shared.topics import Topic

ROOT = Path(__file__).resolve().parents[3]
WAIT = 90.0
"""Guard against a hang; tests wait for conditions, never for a fixed time."""


@pytest.fixture(scope="session")
def infra() -> InfraSettings:
    tag = uuid4().hex[:8]
    return InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_dialer_{tag}", log_format="text")


@pytest.fixture(scope="session")
async def topics(infra: InfraSettings) -> AsyncIterator[None]:
    await ensure_topics(infra, (Topic.CALL_REQUESTS, Topic.CALL_EVENTS))
    yield


@pytest.fixture(scope="session")
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = make_client(infra, "test-dialer")
    yield client
    await client.drop_database(infra.mongo_db)
    await client.close()


@pytest.fixture(scope="session")
async def publisher(infra: InfraSettings, topics: None) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(infra, "test-dialer-requests")
    await pub.start()
    yield pub
    await pub.stop()


class CallEvents:
    """Every call event on the session's `call-events` topic, collected in the background."""

    def __init__(self, infra: InfraSettings) -> None:
        self._infra = infra
        self.events: list[Message] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        topic = Topic.CALL_EVENTS.name_with(self._infra.topic_prefix)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._infra.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        partitions = [TopicPartition(topic, p) for p in range(Topic.CALL_EVENTS.partitions)]
        self._consumer.assign(partitions)
        # The session's topic is new, so offset 0 is its beginning. Seeking there needs no offset lookup:
        # `seek_to_beginning` asks the broker, which on a cold machine can still answer "not leader" for a
        # partition the metadata already gives a leader.
        for tp in partitions:
            self._consumer.seek(tp, 0)
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            fresh = [decode(r.value) for records in batches.values() for r in records if r.value]
            if fresh:
                async with self._changed:
                    self.events.extend(fresh)
                    self._changed.notify_all()

    def of(self, attempt_id: str, kind: type[Message] | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if getattr(e, "attempt_id", None) == attempt_id and (kind is None or isinstance(e, kind))
        ]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(condition)

    async def ended(self, attempt_ids: list[str]) -> dict[str, CallEnded]:
        await self.wait_for(lambda: all(self.of(a, CallEnded) for a in attempt_ids))
        return {a: self.of(a, CallEnded)[0] for a in attempt_ids}


@pytest.fixture(scope="session")
async def call_events(infra: InfraSettings, topics: None) -> AsyncIterator[CallEvents]:
    events = CallEvents(infra)
    await events.start()
    yield events
    await events.stop()


def call_request(
    batch: str, row: int, attempt: int = 1, *, phone: str = "+12025550103", max_call_seconds: int = 600
) -> CallRequested:
    now = datetime.now(UTC)
    contact = f"{batch}_r{row}"
    return CallRequested(
        occurred_at=now,
        workspace_id="ws_dialer_test",
        correlation_id=batch,
        batch_id=batch,
        contact_id=contact,
        attempt_id=f"{contact}_a{attempt}",
        attempt_number=attempt,
        phone_number=phone,
        variables={"first_name": "Ada"},
        agent=AgentSnapshot(
            agent_id="agent_test",
            name="Test",
            prompt_template="Hello {first_name}",
            variables=("first_name",),
            max_call_seconds=max_call_seconds,
        ),
        lease_expires_at=now + timedelta(seconds=max_call_seconds + 120),
    )


def new_batch() -> str:
    return f"batch_{uuid4().hex[:10]}"


def dialer_settings(infra: InfraSettings, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "infra": infra,
        "consumer_group": f"{infra.topic_prefix}dialer",
        "sim_time_scale": 0.0,
        "commit_interval_seconds": 0.2,
    }
    fields.update(overrides)
    return Settings(**fields)


@asynccontextmanager
async def running_dialer(settings: Settings) -> AsyncIterator[Any]:
    """A dialer app in this process: its lifespan runs the consumer; leaving the block drains it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app.state.runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DialerProcess:
    """`python -m dialer` as a subprocess on a free port, with the session's prefix and database."""

    def __init__(self, infra: InfraSettings, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "BC_TOPIC_PREFIX": infra.topic_prefix,
            "BC_MONGO_DB": infra.mongo_db,
            "BC_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "BC_MONGO_URL": infra.mongo_url,
            "DIALER_HTTP_PORT": str(self.port),
            "DIALER_COMMIT_INTERVAL_SECONDS": "0.2",
            "DIALER_CONSUMER_GROUP": f"{infra.topic_prefix}dialer",
            "BC_LOG_FORMAT": "text",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="dialer-", suffix=".log", delete=False)  # noqa: SIM115

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dialer"],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def start(self) -> None:
        self.proc = self._spawn()
        async with asyncio.timeout(WAIT), httpx.AsyncClient() as client:
            while True:
                assert self.proc.poll() is None, self.output()
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    async def metric(self, name: str, labels: str = "") -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def dialer_processes(infra: InfraSettings) -> Iterator[Callable[..., DialerProcess]]:
    made: list[DialerProcess] = []

    def make(**env: str) -> DialerProcess:
        process = DialerProcess(infra, **env)
        made.append(process)
        return process

    yield make
    for process in made:
        process.close()
