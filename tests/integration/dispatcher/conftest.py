"""Fixtures for the dispatcher against real Kafka and FerretDB: a private topic prefix, consumer group and
databases per session; an "ingest" publisher; collectors; a fake dialer; dispatchers as subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.events import (
    AgentSnapshot,
    BatchAccepted,
    BatchIngested,
    CallingWindowSpec,
    ContactAccepted,
    Message,
    RetryPolicySpec,
)
from shared.kafka import EventPublisher, ensure_topics
from shared.mongo import Document, make_client
from shared.settings import InfraSettings
from shared.topics import Topic
from shared.workspaces import Plan, WorkspaceDirectory
from tests.integration.dispatcher.harness import Collector, FakeDialer

ROOT = Path(__file__).resolve().parents[3]
AGENT = AgentSnapshot(
    agent_id="agent_t", name="T", prompt_template="Hi {first_name}", variables=("first_name",)
)
ALWAYS = CallingWindowSpec(start=datetime.min.time(), end=datetime.max.time().replace(microsecond=0))
"""00:00–23:59:59 every day: tests must not depend on the hour they run at (windows have unit tests)."""


@pytest.fixture(scope="session")
def infra() -> InfraSettings:
    tag = uuid4().hex[:8]
    return InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_dispatch_{tag}", log_format="text")


@pytest.fixture(scope="session")
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    await ensure_topics(infra)
    client = make_client(infra, "test-dispatcher")
    yield client
    await client.drop_database(infra.mongo_db)
    await client.drop_database(f"{infra.mongo_db}_dispatch")
    await client.close()


@pytest.fixture(scope="session")
async def directory(infra: InfraSettings, mongo: AsyncMongoClient[Document]) -> WorkspaceDirectory:
    return WorkspaceDirectory(mongo[infra.mongo_db], cache_seconds=0)


@pytest.fixture(scope="session")
async def ingest(infra: InfraSettings, mongo: AsyncMongoClient[Document]) -> AsyncIterator[Ingest]:
    publisher = EventPublisher(infra, "test-ingest")
    await publisher.start()
    yield Ingest(publisher)
    await publisher.stop()


@pytest.fixture(scope="session")
async def dispatch_events(
    infra: InfraSettings, mongo: AsyncMongoClient[Document]
) -> AsyncIterator[Collector]:
    collector = Collector(infra, Topic.DISPATCH_EVENTS)
    await collector.start()
    yield collector
    await collector.stop()


@pytest.fixture
async def dialer(infra: InfraSettings, mongo: AsyncMongoClient[Document]) -> AsyncIterator[FakeDialer]:
    fake = FakeDialer(infra)
    await fake.start()
    yield fake
    await fake.stop()


class Ingest:
    """Publishes what ingest would for an upload (the dispatcher's inputs)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher

    async def upload(
        self,
        workspace_id: str,
        rows: int,
        *,
        number: str = "+1212555{:04d}",
        retry: RetryPolicySpec | None = None,
        window: CallingWindowSpec | None = ALWAYS,
        ingested: bool = True,
        contacts_first: bool = False,
        **extra: Any,
    ) -> str:
        batch_id = f"batch_{uuid4().hex[:12]}"
        now = datetime.now(UTC)
        env = {"occurred_at": now, "workspace_id": workspace_id, "correlation_id": batch_id}
        accepted = BatchAccepted(
            **env,
            batch_id=batch_id,
            total_rows=rows,
            agent=AGENT,
            created_at=now,
            calling_window=window,
            retry_policy=retry or RetryPolicySpec(),
            **extra,
        )
        contacts: list[Message] = [
            ContactAccepted(
                **env,
                batch_id=batch_id,
                contact_id=f"{batch_id}_r{r}",
                row_number=r,
                phone_number=number.format(r),
                variables={"first_name": f"n{r}"},
            )
            for r in range(1, rows + 1)
        ]
        if contacts_first:
            await self.publisher.publish_many(contacts)
            await self.publisher.publish(accepted)
        else:
            await self.publisher.publish(accepted)
            await self.publisher.publish_many(contacts)
        if ingested:
            await self.publisher.publish(
                BatchIngested(**env, batch_id=batch_id, total_rows=rows, accepted=rows, skipped=0)
            )
        return batch_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DispatcherProcess:
    """`python -m dispatcher` on a free port with the session's prefix, group and database."""

    def __init__(self, infra: InfraSettings, log_dir: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "BC_TOPIC_PREFIX": infra.topic_prefix,
            "BC_MONGO_DB": infra.mongo_db,
            "BC_LOG_FORMAT": "text",
            "BC_LOG_LEVEL": "INFO",
            "DISPATCHER_HTTP_PORT": str(self.port),
            "DISPATCHER_CONSUMER_GROUP": f"{infra.topic_prefix}dispatcher",
            "DISPATCHER_PLAN_CACHE_SECONDS": "0.5",
            "DISPATCHER_LEASE_GRACE_SECONDS": "2",
            "DISPATCHER_INSTANCE_ID": f"dispatcher-test-{self.port}",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'services'}",
        }
        self.log = open(log_dir / f"dispatcher-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dispatcher"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    async def ownership(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/v1/dispatcher/ownership", timeout=2)
            return dict(response.json())

    async def wait_owning(self, count: int | None = None, within: float = 60) -> None:
        """Until the process serves and owns partitions (`count` of them, if given)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dispatcher exited with {self.proc.returncode}")
            try:
                owned = (await self.ownership())["partitions"]
                if owned and (count is None or len(owned) == count):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.3)
        raise TimeoutError("dispatcher did not take its partitions")

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, nothing is saved."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def dispatchers(infra: InfraSettings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> Iterator[Any]:
    started: list[DispatcherProcess] = []

    def start() -> DispatcherProcess:
        process = DispatcherProcess(infra, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()


async def workspace(directory: WorkspaceDirectory, cps: float, concurrent: int) -> str:
    workspace_id = f"ws_{uuid4().hex[:8]}"
    await directory.create_workspace(
        workspace_id, workspace_id, Plan(calls_per_second=cps, max_concurrent_calls=concurrent)
    )
    return workspace_id
