"""The projector recovers by itself: a status process killed with -9 mid-projection and started again, and a
FerretDB killed and restarted mid-projection, end with exactly the documents an undisturbed projection
gives. The FerretDB here is a launcher of its own on a free port with a temporary data directory, so the
shared one is never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.mongo import database, make_client
from shared.settings import InfraSettings
from shared.topics import Topic
from status.adapters.mongo_read_models import MongoReadModels
from status.domain.batches import BatchView
from tests.integration.status.conftest import RunningStatus, StatusEnv, free_port, wait_for
from tests.unit.status.fakes import MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import History, history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LAUNCHER = Path(os.environ.get("FERRETDB_LAUNCHER", ROOT / ".stack" / "cache" / "bin" / "ferretdb-launcher"))
ROWS = (900, 700, 500)


def _histories(env: StatusEnv, tag: str) -> list[History]:
    return [
        history(
            6000 + i,
            rows=rows,
            workspace_id=env.tenant.workspace_id,
            batch_id=f"batch_{tag}{i}_{int(time.time() * 1000):x}",
        )
        for i, rows in enumerate(ROWS)
    ]


async def _expected(histories: list[History]) -> MemoryReadModels:
    """What an undisturbed projection of the same events gives."""
    from status.handlers import Projector

    store = MemoryReadModels()
    projector = Projector(store, StaticRoutes(), now_ms=lambda: int(time.time() * 1000))
    for h in histories:
        await projector.project(h.records())
    return store


def _public(view: BatchView) -> BatchView:
    # The feed's numbering depends on how events were chunked; the offsets on where Kafka put them.
    return replace(view, feed_seq=0, offsets={})


async def _assert_converged(read_models: MongoReadModels, histories: list[History]) -> None:
    expected = await _expected(histories)
    for h in histories:
        shown = await read_models.shown_batch(h.batch_id)
        record = await read_models.load_batch(h.batch_id)
        assert shown is not None and record is not None
        assert shown == record, "the shown batch document trails its record after convergence"
        calls = await read_models.calls_by_rows(h.batch_id, 1, h.rows)
        want = sorted(
            (c.view for c in expected.calls.values() if c.view.batch_id == h.batch_id),
            key=lambda v: v.contact_id,
        )
        got_calls = sorted((c.view for c in calls), key=lambda v: v.contact_id)
        wrong = [(g, w) for g, w in zip(got_calls, want, strict=False) if g != w]
        assert not wrong, (
            len(wrong),
            [
                (g.contact_id, f, getattr(g, f), getattr(w, f))
                for g, w in wrong[:2]
                for f in type(g).__dataclass_fields__
                if getattr(g, f) != getattr(w, f)
            ],
        )
        assert len(calls) == h.rows
        got, want_view = _public(shown.view), _public(expected.batches[h.batch_id].view)
        diff = {
            f: (getattr(got, f), getattr(want_view, f))
            for f in BatchView.__dataclass_fields__
            if getattr(got, f) != getattr(want_view, f)
        }
        assert not diff, (sorted(diff), diff)


async def _progress(read_models: MongoReadModels, histories: list[History]) -> int:
    """How many calls the shown batch documents count as finished (0 before the first is written)."""
    total = 0
    for h in histories:
        shown = await read_models.shown_batch(h.batch_id)
        if shown is not None:
            total += shown.view.counts.terminal
    return total


async def _caught_up(infra: InfraSettings, group: str) -> bool:
    """Whether the group has committed every record of every topic (a complete batch can still have
    attempt events on their way: its calls are terminal before their last call event is projected)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [
            TopicPartition(topic.name_with(infra.topic_prefix), p)
            for topic in Topic
            for p in range(topic.partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        return all((committed[tp].offset if tp in committed else 0) >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def _all_complete(http: httpx.AsyncClient, histories: list[History]) -> bool:
    for h in histories:
        response = await http.get(f"/v1/batch-calls/{h.batch_id}")
        if response.status_code != 200 or not response.json()["isComplete"]:
            return False
    return True


# --- kill -9 of the status process ------------------------------------------------------------------------


class StatusProcess:
    """`python -m status` as its own process (so it can be killed with -9), on a free port."""

    def __init__(self, infra: InfraSettings, group: str, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "STATUS_"))}
        env.update(
            {
                "BC_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
                "BC_TOPIC_PREFIX": infra.topic_prefix,
                "BC_MONGO_URL": infra.mongo_url,
                "BC_MONGO_DB": infra.mongo_db,
                "BC_LOG_FORMAT": "text",
                "STATUS_HTTP_PORT": str(self.port),
                "STATUS_CONSUMER_GROUP": group,
                "STATUS_DELIVER_WEBHOOKS": "false",
                "STATUS_STATUS_CACHE_MS": "0",
                # Small chunks, so a kill lands between the writes of a chunk rather than after the last.
                "STATUS_CHUNK_MAX_RECORDS": "300",
                "STATUS_CATCHUP_MAX_RECORDS": "600",
            }
        )
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "status"],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def ready(self) -> None:
        async def answers() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"status exited with {self.proc.returncode}")
            try:
                async with httpx.AsyncClient(trust_env=False) as http:
                    return (await http.get(f"{self.base_url}/readyz", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(answers, within=60)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


async def test_a_status_process_killed_mid_projection_converges_after_its_restart(
    status_env: StatusEnv, tmp_path: Path
) -> None:
    histories = _histories(status_env, "k")
    mongo = make_client(status_env.infra, "test-status-kill")
    read_models = MongoReadModels(database(mongo, status_env.infra), now_ms=lambda: int(time.time() * 1000))
    group = f"status-kill-{time.time_ns()}"
    log = tmp_path / "status.log"
    try:
        for h in histories:
            await status_env.publisher.publish_many(h.messages)
        first = StatusProcess(status_env.infra, group, log)
        try:
            await first.ready()

            async def some() -> bool:
                return await _progress(read_models, histories) > 0

            await wait_for(some, within=120, interval=0.05)
        finally:
            first.kill()
        done = await _progress(read_models, histories)
        assert done < sum(ROWS), "the kill came after the projection had finished; nothing was tested"
        second = StatusProcess(status_env.infra, group, log)
        try:
            await second.ready()
            async with httpx.AsyncClient(
                base_url=second.base_url, headers=status_env.tenant.headers, timeout=30, trust_env=False
            ) as http:
                await wait_for(lambda: _all_complete(http, histories), within=180)
                await wait_for(lambda: _caught_up(status_env.infra, group), within=180)
        finally:
            second.stop()
        await _assert_converged(read_models, histories)
    finally:
        await mongo.close()


# --- FerretDB killed and restarted ------------------------------------------------------------------------


class FerretDB:
    """A FerretDB launcher of our own: a free port, a temporary SQLite directory."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        if not LAUNCHER.exists():
            raise AssertionError(f"{LAUNCHER} is missing: `stack/stack.sh up` builds it")
        self.port = free_port()
        self.data_dir = data_dir
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block; waiting is async below)
            [str(LAUNCHER), "-port", str(self.port), "-data-dir", str(self.data_dir), "-log-level", "warn"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

        async def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "ferretdb-launcher exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await wait_for(listening, within=30, interval=0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
async def own_ferretdb(tmp_path: Path) -> AsyncIterator[FerretDB]:
    ferret = FerretDB(tmp_path / "ferretdb", tmp_path / "ferretdb.log")
    await ferret.start()
    try:
        yield ferret
    finally:
        ferret.kill()


async def _health(running: RunningStatus) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=running.base_url, trust_env=False) as http:
        healthz = await http.get("/healthz", timeout=10)
        readyz = await http.get("/readyz", timeout=10)
    return {"healthz": healthz.status_code, "readyz": readyz.status_code, "body": readyz.json()}


async def test_a_ferretdb_restart_mid_projection_converges(
    status_env: StatusEnv, own_ferretdb: FerretDB
) -> None:
    infra = status_env.infra.model_copy(update={"mongo_url": own_ferretdb.url})
    # The tenant's workspace and key live in the shared database; the API is not what this test reads.
    histories = _histories(status_env, "f")
    mongo = make_client(infra, "test-status-ferret")
    read_models = MongoReadModels(database(mongo, infra), now_ms=lambda: int(time.time() * 1000))
    group = f"status-ferret-{time.time_ns()}"
    settings = status_env.settings(
        group,
        deliver_webhooks=False,
        chunk_max_records=300,
        catchup_max_records=600,
    ).model_copy(update={"infra": infra})
    running = RunningStatus(settings)
    await running.start()
    try:
        for h in histories:
            await status_env.publisher.publish_many(h.messages)

        async def some() -> bool:
            return await _progress(read_models, histories) > 0

        await wait_for(some, within=120, interval=0.05)
        own_ferretdb.kill()
        await asyncio.sleep(3)  # the projector fails its writes meanwhile
        down = await _health(running)
        assert down["readyz"] == 503, down
        await own_ferretdb.start()

        async def finished() -> bool:
            total = 0
            for h in histories:
                shown = await read_models.shown_batch(h.batch_id)
                if shown is None or not shown.view.is_complete:
                    return False
                total += 1
            return total == len(histories)

        await wait_for(finished, within=180)
        await wait_for(lambda: _caught_up(infra, group), within=180)
        up = await _health(running)
        assert up["healthz"] == 200 and up["readyz"] == 200, up
        await _assert_converged(read_models, histories)
    finally:
        await running.stop()
        await mongo.close()
