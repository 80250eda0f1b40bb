"""A status service of its own per test session: its own topic prefix, its own database, in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pytest
import uvicorn

from shared.kafka import EventPublisher, ensure_topics
from shared.mongo import database, make_client
from shared.settings import InfraSettings
from shared.workspaces import Plan, WorkspaceDirectory
from status.bootstrap import build
from status.config import Settings
from status.entrypoints.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Tenant:
    workspace_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "x-workspace-id": self.workspace_id}


class RunningStatus:
    """One `status` app served by uvicorn on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = f"http://127.0.0.1:{settings.http_port}"
        config = uvicorn.Config(
            create_app(build(settings)),
            host="127.0.0.1",
            port=settings.http_port,
            log_config=None,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


@dataclass
class StatusEnv:
    infra: InfraSettings
    publisher: EventPublisher
    tenant: Tenant
    other: Tenant

    def settings(self, group: str = "status", **overrides: object) -> Settings:
        return Settings(
            infra=self.infra,
            http_port=free_port(),
            consumer_group=group,
            chunk_wait_ms=50,
            status_cache_ms=0,
            sse_poll_ms=50,
            webhook_poll_seconds=0.2,
            webhook_backoff_seconds=0.2,
            **overrides,  # type: ignore[arg-type]
        )

    async def start(self, group: str = "status", **overrides: object) -> RunningStatus:
        running = RunningStatus(self.settings(group, **overrides))
        await running.start()
        return running


@pytest.fixture(scope="session")
async def status_env() -> AsyncIterator[StatusEnv]:
    tag = uuid4().hex[:8]
    infra = InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_status_{tag}", log_format="text")
    await ensure_topics(infra)
    client = make_client(infra, "test-status")
    directory = WorkspaceDirectory(database(client, infra))
    plan = Plan(name="test", requests_per_minute=100_000, max_concurrent_calls=10, calls_per_second=10)
    tenants = []
    for name in ("ws_main", "ws_other"):
        workspace_id = f"{name}_{tag}"
        await directory.create_workspace(workspace_id, name, plan)
        key = await directory.issue_key(workspace_id)
        tenants.append(Tenant(workspace_id, key.secret_key))
    publisher = EventPublisher(infra, "test-status-publisher")
    await publisher.start()
    try:
        yield StatusEnv(infra, publisher, tenants[0], tenants[1])
    finally:
        await publisher.stop()
        await client.drop_database(infra.mongo_db)
        await client.close()


async def wait_for(check: object, *, within: float = 60.0, interval: float = 0.2) -> object:
    """Polls the async callable `check` until it returns something truthy (a readiness wait, not a timing
    assertion: the timeout only bounds a broken run)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()  # type: ignore[operator]
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s; last result {result!r}")
        await asyncio.sleep(interval)


def client(running: RunningStatus, tenant: Tenant) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=running.base_url, headers=tenant.headers, timeout=30, trust_env=False)
