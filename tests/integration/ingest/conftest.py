"""Ingest against the real parts: `python -m ingest` as a subprocess, behind its own nginx gateway rendered
from the stack's template, on real Kafka and FerretDB, with this session's own topics and database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import AnyMessage, decode
from shared.kafka import delete_topics, ensure_topics
from shared.mongo import database, make_client
from shared.settings import InfraSettings
from shared.topics import Topic
from shared.workspaces import Plan, WorkspaceDirectory

ROOT = Path(__file__).resolve().parents[3]
UPLOAD_LIMIT = 2_000_000
"""The test instance's file limit (the real 20 MB limit is exercised by the benchmark)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None, log: Path, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraSettings]:
    tag = uuid4().hex[:8]
    settings = InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_ingest_{tag}")
    asyncio.run(ensure_topics(settings))
    yield settings

    async def clean() -> None:
        client = make_client(settings, "test-ingest-cleanup")
        await client.drop_database(settings.mongo_db)
        await client.close()
        await delete_topics(settings)

    asyncio.run(clean())


class IngestServer:
    """One `python -m ingest` process; `kill()` is a crash (SIGKILL), `start()` brings it back."""

    def __init__(self, infra: InfraSettings, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "ingest.log"
        self.env = {
            **os.environ,
            "BC_TOPIC_PREFIX": infra.topic_prefix,
            "BC_MONGO_DB": infra.mongo_db,
            "BC_LOG_FORMAT": "text",
            "INGEST_HTTP_PORT": str(self.port),
            "INGEST_VALIDATION_WORKERS": "1",
            "INGEST_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
            "INGEST_RESUME_STALE_SECONDS": "1",
            "INGEST_RESUME_CHECK_SECONDS": "1",
            "INGEST_ROWS_PER_BLOCK": "500",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        _wait_http(f"http://127.0.0.1:{self.port}/readyz", self.proc, self.log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        # Its validation workers notice their parent is gone and exit on their own.

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest")


@pytest.fixture(scope="session")
def ingest_server(infra: InfraSettings, workdir: Path) -> Iterator[IngestServer]:
    server = IngestServer(infra, workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(ingest_server: IngestServer, workdir: Path) -> Iterator[str]:
    """nginx with the stack's own routing template, in front of this session's ingest."""
    port = free_port()
    nginx_dir = workdir / "nginx"
    for sub in ("tmp/client_body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
        (nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "GATEWAY_PORT": str(port),
        "INGEST_PORT": str(ingest_server.port),
        "STATUS_PORT": str(free_port()),
        "STACK_RUN": str(nginx_dir),
        "STACK_LOGS": str(nginx_dir / "logs"),
        "STACK_NGINX": str(nginx_dir),
    }
    template = (ROOT / "stack" / "nginx" / "nginx.conf.template").read_text()
    conf = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    (nginx_dir / "nginx.conf").write_text(conf)
    log = nginx_dir / "logs" / "nginx.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["nginx", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-e", "stderr"],
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/gateway/healthz", proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@dataclass
class Tenant:
    workspace_id: str
    headers: dict[str, str]


MakeTenant = Callable[..., Awaitable[Tenant]]


@pytest.fixture(scope="session")
def make_tenant(infra: InfraSettings) -> MakeTenant:
    """A new workspace with a key (plan overrides as keyword arguments), made through the admin code."""

    async def create(**plan: Any) -> Tenant:
        client = make_client(infra, "test-ingest-setup")
        try:
            directory = WorkspaceDirectory(database(client, infra))
            workspace_id = f"ws_{uuid4().hex[:10]}"
            limits = {"max_records_per_batch": 50, "requests_per_minute": 1000, **plan}
            await directory.create_workspace(workspace_id, "test", Plan(**limits), default_region="US")
            key = await directory.issue_key(workspace_id)
        finally:
            await client.close()
        return Tenant(workspace_id, {"x-api-key": key.secret_key, "x-workspace-id": workspace_id})

    return create


@pytest.fixture
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        yield client


@pytest.fixture
async def tenant(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def agent_id(http: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await http.post(
        "/v1/agents",
        headers=tenant.headers,
        json={"name": "Sales", "prompt": "Hello {first_name}, this is {company} about {region}."},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class EventLog:
    """Reads this session's batches and contacts topics from the start, decoded."""

    def __init__(self, infra: InfraSettings) -> None:
        self._infra = infra

    async def read(
        self,
        batch_id: str,
        until: Callable[[list[AnyMessage]], bool],
        *,
        topics: tuple[Topic, ...] = (Topic.BATCHES, Topic.CONTACTS),
        deadline_s: float = 120,
    ) -> list[AnyMessage]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._infra.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: list[AnyMessage] = []
        try:
            parts = [
                TopicPartition(t.name_with(self._infra.topic_prefix), p)
                for t in topics
                for p in range(t.partitions)
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline:
                await self._fetch(consumer, batch_id, found)
                if until(found):
                    # The topics are fetched independently: the batch's closing event can arrive before the
                    # last contacts published ahead of it. Drain every partition to its current end first.
                    await self._drain(consumer, parts, batch_id, found)
                    return found
            raise AssertionError(f"events for {batch_id} never satisfied the condition; got {len(found)}")
        finally:
            await consumer.stop()

    @staticmethod
    async def _drain(
        consumer: AIOKafkaConsumer, parts: list[TopicPartition], batch_id: str, found: list[AnyMessage]
    ) -> None:
        ends = await consumer.end_offsets(parts)
        for part in parts:
            while await consumer.position(part) < ends[part]:
                await EventLog._fetch(consumer, batch_id, found)

    @staticmethod
    async def _fetch(consumer: AIOKafkaConsumer, batch_id: str, found: list[AnyMessage]) -> None:
        for records in (await consumer.getmany(timeout_ms=300, max_records=5000)).values():
            for record in records:
                message = decode(record.value)
                if getattr(message, "batch_id", None) == batch_id:
                    found.append(message)


@pytest.fixture(scope="session")
def events(infra: InfraSettings) -> EventLog:
    return EventLog(infra)
