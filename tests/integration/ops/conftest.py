"""The four services as `python -m <service>` subprocesses on free ports, with a private topic prefix and
database, exporting spans over OTLP/HTTP to a collector inside the test; and one tiny batch driven through
them, so labelled metrics and a complete trace exist.

Used by the dashboard-metrics and the trace tests. Time bounds here guard against hangs; no test asserts on
durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shared.kafka import ensure_topics
from shared.mongo import database, make_client
from shared.settings import InfraSettings
from shared.workspaces import Plan, WorkspaceDirectory

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("ingest", "status", "dispatcher", "dialer")
WAIT = 180.0
"""Guard against a hang while services start and the batch runs."""
CSV = "phone_number,first_name\n+14155550101,Ada\n+14155550102,Grace\n+442071838750,Alan\n"


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int


@dataclass
class OtlpCollector:
    """An OTLP/HTTP trace receiver: POST /v1/traces with protobuf bodies, spans kept in memory."""

    port: int
    spans: list[CollectedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                service = attributes.get("service.name", "")
                for scope in resource_spans.scope_spans:
                    for s in scope.spans:
                        self.spans.append(
                            CollectedSpan(
                                service,
                                s.name,
                                s.trace_id.hex(),
                                s.span_id.hex(),
                                s.parent_span_id.hex(),
                                s.kind,
                            )
                        )

    def snapshot(self) -> list[CollectedSpan]:
        with self.lock:
            return list(self.spans)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    sink = OtlpCollector(free_port())

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/v1/traces":
                sink.add(body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class RunningServices:
    infra: InfraSettings
    ports: dict[str, int]
    logs: Path

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def log_tail(self, service: str, lines: int = 40) -> str:
        path = self.logs / f"{service}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="module")
async def services(
    collector: OtlpCollector, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServices]:
    tag = uuid4().hex[:8]
    infra = InfraSettings(topic_prefix=f"t{tag}.", mongo_db=f"test_ops_{tag}")
    await ensure_topics(infra)
    ports = {name: free_port() for name in SERVICES}
    logs = tmp_path_factory.mktemp("ops-services")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "OTEL_"))}
    base.update(
        {
            "BC_TOPIC_PREFIX": infra.topic_prefix,
            "BC_MONGO_DB": infra.mongo_db,
            "BC_LOG_FORMAT": "json",
            "BC_OTEL_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{collector.port}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "DIALER_PROVIDER": "simulated",
            "DIALER_SIM_TIME_SCALE": "0",
            "DIALER_DRAIN_SECONDS": "2",
            "INGEST_VALIDATION_WORKERS": "0",
        }
    )
    running = RunningServices(infra, ports, logs)
    processes = _spawn(running, base)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for name in SERVICES:
                await _wait_ready(client, running, name, processes[name])
        yield running
    finally:
        _stop(processes)
        mongo = make_client(infra, "test-ops")
        # The dispatcher keeps its own state in `<db>_dispatch` (DISPATCHER_STATE_DB's default).
        for name in (infra.mongo_db, f"{infra.mongo_db}_dispatch"):
            await mongo.drop_database(name)
        await mongo.close()


def _spawn(running: RunningServices, base: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
    processes = {}
    for name in SERVICES:
        env = dict(base)
        env[f"{name.upper()}_HTTP_PORT"] = str(running.ports[name])
        env[f"{name.upper()}_HTTP_HOST"] = "127.0.0.1"
        # A consumer group of this test's own: one shared with other runs on the broker (same group id,
        # other topics) would rebalance whenever any of them starts or stops.
        if "consumer_group" in importlib.import_module(f"{name}.config").Settings.model_fields:
            env[f"{name.upper()}_CONSUMER_GROUP"] = f"{name}-{running.infra.topic_prefix.rstrip('.')}"
        with (running.logs / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", name], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
    return processes


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(
    client: httpx.AsyncClient, running: RunningServices, name: str, process: subprocess.Popen[bytes]
) -> None:
    async def ready() -> None:
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"python -m {name} exited {process.returncode}:\n{running.log_tail(name)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(running.url(name, "/readyz"))).status_code == 200:
                    return
            await asyncio.sleep(0.3)

    try:
        await asyncio.wait_for(ready(), WAIT)
    except TimeoutError:
        raise AssertionError(f"{name} not ready within {WAIT} s:\n{running.log_tail(name)}") from None


@dataclass(frozen=True)
class DrivenBatch:
    batch_id: str
    upload_traceparent: str
    final_status: dict[str, Any]


@pytest.fixture(scope="module")
async def batch(services: RunningServices) -> DrivenBatch:
    """A workspace, a key, an agent and a three-row batch, followed until every row is final."""
    mongo = make_client(services.infra, "test-ops")
    try:
        directory = WorkspaceDirectory(database(mongo, services.infra))
        workspace_id = f"ws_ops_{uuid4().hex[:6]}"
        plan = Plan(name="ops", calls_per_second=10, max_concurrent_calls=5, requests_per_minute=600)
        await directory.create_workspace(workspace_id, "ops test", plan)
        key = await directory.issue_key(workspace_id, "ops test")
    finally:
        await mongo.close()
    headers = {"x-api-key": key.secret_key, "x-workspace-id": workspace_id}
    # The caller's own trace: the upload request carries it, so the whole batch should join it.
    trace_id = uuid4().hex
    traceparent = f"00-{trace_id}-{uuid4().hex[:16]}-01"
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        agent = await client.post(
            services.url("ingest", "/v1/agents"),
            json={"name": "ops probe", "prompt": "Hello {first_name}, this is a test call."},
        )
        assert agent.status_code == 201, agent.text
        started = await client.post(
            services.url("ingest", "/v1/batch-calls"),
            headers={"traceparent": traceparent},
            data={
                "agentId": agent.json()["id"],
                "callingWindow": json.dumps(
                    {"days": list(range(7)), "start": "00:00", "end": "23:59", "timezone": "UTC"}
                ),
                "retryPolicy": json.dumps({"maxAttempts": 1}),
            },
            files={"file": ("contacts.csv", CSV.encode(), "text/csv")},
        )
        assert started.status_code in (200, 201, 202), started.text
        batch_id = started.json()["batchId"]

        async def finished() -> dict[str, Any]:
            while True:
                response = await client.get(services.url("status", f"/v1/batch-calls/{batch_id}/status"))
                if response.status_code == 200:
                    body = response.json()
                    if body.get("isComplete") is True:  # every row final: completed, failed or cancelled
                        return dict(body)
                await asyncio.sleep(0.5)

        try:
            final = await asyncio.wait_for(finished(), WAIT)
        except TimeoutError:
            tails = "\n".join(f"--- {s}\n{services.log_tail(s, 15)}" for s in SERVICES)
            raise AssertionError(f"batch {batch_id} did not finish within {WAIT} s\n{tails}") from None
    return DrivenBatch(batch_id, traceparent, final)
