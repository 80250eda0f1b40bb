"""End-to-end throughput: `make bench-pipeline` → bench/results/pipeline.json.

    .venv/bin/python -m bench.pipeline [--contacts 100000] [--runs 1] [--dialers 1] [--mongo-metrics] [--keep]

One run: the four services as `python -m <service>` subprocesses on free ports, with a topic prefix and a
database of their own (the running stack is left alone), real Kafka and FerretDB, the simulated provider at
time scale 0 (instant calls), a workspace whose plan is set high (cps and concurrent calls above anything
this machine reaches), one attempt per contact, the simulated campaign's outcome mix without system errors
(whose retries wait 30 s by policy). The CSV is uploaded to ingest and the batch is polled
through the status API until every contact is terminal.

- `seconds_to_all_terminal`: from the upload request until `GET /v1/batch-calls/{id}/status` says
  `isComplete` with every contact counted terminal;
- `calls_per_second`: contacts / seconds_to_all_terminal (target >= 1,000);
- `max_projection_lag_ms`: the status service's `batchcalls_status_projection_lag_seconds` gauge (the age
  of the newest event in its last projected chunk), sampled every 0.5 s, at its peak;
- `stages`: for each stage, when it handled its first and last contact, from Kafka record timestamps
  (contacts published by ingest, call requests by the dispatcher, call endings by the dialer) and the
  status API (last contact terminal), and each stage's own rate. The stage whose rate is lowest, with the
  others waiting on it (its consumer lag grows: `max_lag` per group, sampled every second), bounds the
  pipeline.

Medians over `--runs` runs; every run kept in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dialer.domain.simulation import DEFAULT_MIX
from shared.consumer_lag import ConsumerLagMonitor
from shared.kafka import delete_topics, ensure_topics
from shared.mongo import database, make_client
from shared.outcomes import Outcome
from shared.settings import InfraSettings
from shared.topics import Topic
from shared.workspaces import Plan, WorkspaceDirectory

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "pipeline.json"
WORK = ROOT / "bench" / "work"
PIPELINE_OUTCOMES = ",".join(f"{o.value}={w}" for o, w in DEFAULT_MIX if o is not Outcome.SYSTEM_ERROR)
AREA_CODES = (
    "202", "206", "212", "213", "303", "305", "312", "404", "415", "503",
    "512", "602", "617", "702", "713", "718", "801", "808", "919", "971",
)  # fmt: skip
OPEN_WINDOW = json.dumps({"days": list(range(7)), "start": "00:00", "end": "23:59", "timezone": "UTC"})
TIMEOUT_SECONDS = 3600.0
"""Guard against a stuck run."""

# Which consumer group reads which topics (for the lag samples).
GROUP_TOPICS = {
    "dispatcher": (Topic.BATCHES, Topic.CONTACTS, Topic.CALL_EVENTS),
    "dialer": (Topic.CALL_REQUESTS,),
    "status": tuple(Topic),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def contacts_csv(count: int) -> bytes:
    """`count` distinct US numbers: 555-1000..9999 in 20 area codes (never the 555-01XX test numbers)."""
    if count > len(AREA_CODES) * 9000:
        raise SystemExit(f"--contacts at most {len(AREA_CODES) * 9000}")
    lines = ["phone_number,first_name"]
    for i in range(count):
        area, line = AREA_CODES[i % len(AREA_CODES)], 1000 + i // len(AREA_CODES)
        lines.append(f"+1{area}555{line:04d},Person{i}")
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Services:
    infra: InfraSettings
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_services(
    infra: InfraSettings, dialers: int, logs: Path, *, mongo_metrics: bool = False
) -> Services:
    names = ["ingest", "dispatcher", "status"] + [f"dialer-{i}" for i in range(1, dialers + 1)]
    ports = {name: _free_port() for name in names}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "OTEL_"))}
    base.update(
        {
            "BC_TOPIC_PREFIX": infra.topic_prefix,
            "BC_MONGO_DB": infra.mongo_db,
            "BC_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "DIALER_PROVIDER": "simulated",
            "DIALER_SIM_TIME_SCALE": "0",
            # The campaign mix without system errors: their retries wait 30 s by policy (ADR 0023), which
            # would measure the retry gap, not the pipeline.
            "DIALER_SIM_OUTCOMES": PIPELINE_OUTCOMES,
            "STATUS_DELIVER_WEBHOOKS": "false",
        }
    )
    if mongo_metrics:
        base["BC_MONGO_COMMAND_METRICS"] = "true"
    group_suffix = infra.topic_prefix.rstrip(".")
    processes = {}
    for name in names:
        service = name.split("-")[0]
        env = dict(base)
        upper = service.upper()
        env[f"{upper}_HTTP_PORT"], env[f"{upper}_HTTP_HOST"] = str(ports[name]), "127.0.0.1"
        if service != "ingest":
            # A group of this run's own, so other users of the broker never rebalance it.
            env[f"{upper}_CONSUMER_GROUP"] = f"{service}-{group_suffix}"
        if service == "dialer":
            env["DIALER_INSTANCE_ID"] = name
        with (logs / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", service], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
    return Services(infra, ports, processes)


async def wait_ready(http: httpx.AsyncClient, services: Services, logs: Path) -> None:
    for name, process in services.processes.items():
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited {process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(services.url(name, "/readyz"))).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready within 180 s")
            await asyncio.sleep(0.3)


async def make_workspace(infra: InfraSettings, contacts: int) -> dict[str, str]:
    mongo = make_client(infra, "bench-pipeline")
    try:
        directory = WorkspaceDirectory(database(mongo, infra))
        workspace_id = f"ws_pipeline_{uuid4().hex[:6]}"
        # Limits above anything this machine reaches: the benchmark measures the pipeline, not the plan.
        plan = Plan(
            name="pipeline",
            max_records_per_batch=max(contacts, 10_000),
            calls_per_second=100_000,
            max_concurrent_calls=100_000,
            requests_per_minute=100_000,
        )
        await directory.create_workspace(workspace_id, "pipeline benchmark", plan)
        key = await directory.issue_key(workspace_id, "pipeline benchmark")
    finally:
        await mongo.close()
    return {"x-api-key": key.secret_key, "x-workspace-id": workspace_id}


def _gauge(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


_MONGO_FIELD = {"commands": "commands", "documents": "documents", "command_seconds": "seconds"}
_MONGO_METRIC = re.compile(r"^batchcalls_mongo_(commands|documents|command_seconds)_total\{(.*)\} (\S+)$")


def mongo_use(metrics: str) -> dict[str, dict[str, float]]:
    """A service's store use from its `batchcalls_mongo_*` counters: per `collection command`, how many
    commands, documents and seconds (BC_MONGO_COMMAND_METRICS)."""
    use: dict[str, dict[str, float]] = {}
    for line in metrics.splitlines():
        found = _MONGO_METRIC.match(line)
        if found is None:
            continue
        kind, labels, value = found.groups()
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{fields['collection']} {fields['command']}"
        entry = use.setdefault(key, {"commands": 0.0, "documents": 0.0, "seconds": 0.0})
        entry[_MONGO_FIELD[kind]] += float(value)
    return {k: {n: round(v, 3) for n, v in e.items()} for k, e in sorted(use.items())}


class Sampler:
    """Projection lag (status's gauge) every 0.5 s and each group's consumer lag every second."""

    def __init__(self, http: httpx.AsyncClient, services: Services) -> None:
        self._http, self._services = http, services
        self.projection_lag_max_s = 0.0
        self.max_lag: dict[str, int] = dict.fromkeys(GROUP_TOPICS, 0)
        self.rss_max_mb: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        suffix = services.infra.topic_prefix.rstrip(".")
        self._monitors = {
            g: ConsumerLagMonitor(services.infra, f"{g}-{suffix}", topics)
            for g, topics in GROUP_TOPICS.items()
        }

    async def projection(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                text = (await self._http.get(self._services.url("status", "/metrics"))).text
                lag = _gauge(text, "batchcalls_status_projection_lag_seconds")
                if lag is not None:
                    self.projection_lag_max_s = max(self.projection_lag_max_s, lag)
            for name, process in self._services.processes.items():
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(process.pid).memory_info().rss / 2**20
                    self.rss_max_mb[name] = max(self.rss_max_mb.get(name, 0.0), rss)
                    cpu = psutil.Process(process.pid).cpu_times()
                    self.cpu_seconds[name] = cpu.user + cpu.system
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def lags(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for group, monitor in self._monitors.items():
                # A probe during a rebalance may fail; the next one counts.
                with contextlib.suppress(Exception):
                    lag = sum((await monitor.measure_once()).values())
                    self.max_lag[group] = max(self.max_lag[group], lag)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        for monitor in self._monitors.values():
            await monitor.close()


async def record_times(
    infra: InfraSettings, topic: Topic, wanted: str | None
) -> tuple[float, float, int, int]:
    """First and last Kafka record timestamp (s) of a topic, how many records have type `wanted` (any
    type: None), and how many distinct attempt ids they name (call requests and call events carry one)."""
    name = topic.name_with(infra.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
    finally:
        await admin.close()
    partitions = [TopicPartition(name, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        first, last, count = float("inf"), 0.0, 0
        attempts: set[str] = set()
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    body = json.loads(record.value or b"{}")
                    if wanted is None or body.get("type") == wanted:
                        first, last, count = (
                            min(first, record.timestamp),
                            max(last, record.timestamp),
                            count + 1,
                        )
                        if "attempt_id" in body:
                            attempts.add(body["attempt_id"])
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return first / 1000, last / 1000, count, len(attempts)
    finally:
        await consumer.stop()


def infra_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the local stack's Kafka broker, FerretDB and PostgreSQL (from their pid
    files), with their live child processes (PostgreSQL runs a process per connection)."""
    out: dict[str, float] = {}
    for part in ("kafka", "ferretdb", "postgres"):
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            process = psutil.Process(int((ROOT / ".stack" / "run" / f"{part}.pid").read_text()))
            total = 0.0
            for member in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    cpu = member.cpu_times()
                    total += cpu.user + cpu.system + cpu.children_user + cpu.children_system
            out[part] = total
    return out


async def run_once(args: argparse.Namespace, run: int) -> dict[str, Any]:
    tag = uuid4().hex[:8]
    infra = InfraSettings(topic_prefix=f"p{tag}.", mongo_db=f"bench_pipeline_{tag}")
    await ensure_topics(infra)
    logs = WORK / f"pipeline-{tag}"
    logs.mkdir(parents=True, exist_ok=True)
    body = contacts_csv(args.contacts)
    headers = await make_workspace(infra, args.contacts)
    services = start_services(infra, args.dialers, logs, mongo_metrics=args.mongo_metrics)
    store_use: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=600, headers=headers) as http:
            await wait_ready(http, services, logs)
            made = await http.post(
                services.url("ingest", "/v1/agents"),
                json={"name": "pipeline", "prompt": "Hello {first_name}, this is a test call."},
            )
            made.raise_for_status()
            sampler = Sampler(http, services)
            stop = asyncio.Event()
            samplers = [
                asyncio.create_task(sampler.projection(stop)),
                asyncio.create_task(sampler.lags(stop)),
            ]
            infra_before = infra_cpu_seconds()
            t0 = time.time()
            started = await http.post(
                services.url("ingest", "/v1/batch-calls"),
                data={
                    "agentId": made.json()["id"],
                    "callingWindow": OPEN_WINDOW,
                    "retryPolicy": json.dumps({"maxAttempts": 1}),
                },
                files={"file": ("contacts.csv", body, "text/csv")},
            )
            answered = time.time()
            if started.status_code != 200:
                raise RuntimeError(f"upload answered {started.status_code}: {started.text}")
            batch_id = started.json()["batchId"]
            print(f"run {run}: batch {batch_id}, upload answered in {answered - t0:.1f} s", flush=True)
            final = await _until_terminal(http, services, batch_id, args.contacts, t0)
            t_done = time.time()
            infra_after = infra_cpu_seconds()
            if args.mongo_metrics:
                for name in services.processes:
                    store_use[name] = mongo_use((await http.get(services.url(name, "/metrics"))).text)
            stop.set()
            await asyncio.gather(*samplers)
        stages = await _stages(infra, t0, answered, t_done, args.contacts)
    finally:
        services.stop()
        mongo = make_client(infra, "bench-pipeline")
        for name in (infra.mongo_db, f"{infra.mongo_db}_dispatch"):
            if args.keep:
                print(f"kept database {name}", flush=True)
                continue
            with contextlib.suppress(Exception):
                await mongo.drop_database(name)
        await mongo.close()
        if not args.keep:
            with contextlib.suppress(Exception):
                await delete_topics(infra)
    seconds = t_done - t0
    return {
        "contacts": args.contacts,
        "seconds_to_all_terminal": round(seconds, 2),
        "calls_per_second": round(args.contacts / seconds, 1),
        "max_projection_lag_ms": round(sampler.projection_lag_max_s * 1000),
        "upload_response_seconds": round(answered - t0, 2),
        "final_counts": {k: v for k, v in final.items() if k != "recent_calls"},
        "stages": stages,
        "max_consumer_lag": sampler.max_lag,
        "rss_max_mb": {k: round(v, 1) for k, v in sampler.rss_max_mb.items()},
        # Where the machine's two cores went during the run (services: whole process life, incl. start-up).
        "cpu_seconds": {
            **{k: round(v, 1) for k, v in sampler.cpu_seconds.items()},
            **{k: round(infra_after[k] - infra_before.get(k, 0.0), 1) for k in infra_after},
        },
        "load_average_at_end": round(os.getloadavg()[0], 2),
        **({"mongo": store_use} if store_use else {}),
    }


async def _until_terminal(
    http: httpx.AsyncClient, services: Services, batch_id: str, contacts: int, t0: float
) -> dict[str, Any]:
    last_print = 0.0
    while True:
        if time.time() - t0 > TIMEOUT_SECONDS:
            raise RuntimeError(f"batch {batch_id} not terminal within {TIMEOUT_SECONDS} s")
        for name, process in services.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode} during the run")
        got = await http.get(services.url("status", f"/v1/batch-calls/{batch_id}/status"))
        if got.status_code == 200:
            body = got.json()
            if body.get("isComplete") is True:
                return dict(body)
            if time.time() - last_print > 10:
                last_print = time.time()
                print(f"  {time.time() - t0:6.0f} s: {json.dumps(body)[:200]}", flush=True)
        await asyncio.sleep(0.25)


async def _stages(
    infra: InfraSettings, t0: float, answered: float, t_done: float, contacts: int
) -> dict[str, dict[str, float]]:
    def stage(first: float, last: float, count: int, attempts: int) -> dict[str, float]:
        span = max(last - first, 1e-3)
        out = {
            "first_s": round(first - t0, 2),
            "last_s": round(last - t0, 2),
            "records": count,
            "per_second": round(count / span, 1),
        }
        if attempts:
            # Equal to `records` unless an attempt was requested or ended twice (a retry is a new attempt id).
            out["distinct_attempts"] = attempts
        return out

    ingest = await record_times(infra, Topic.CONTACTS, None)
    dispatch = await record_times(infra, Topic.CALL_REQUESTS, None)
    ended = await record_times(infra, Topic.CALL_EVENTS, "call.ended")
    return {
        "ingest_publish": stage(*ingest),
        "dispatcher_requests": stage(*dispatch),
        "dialer_call_ended": stage(*ended),
        "status_all_terminal": {
            "last_s": round(t_done - t0, 2),
            "upload_answered_s": round(answered - t0, 2),
        },
        "contacts": {"records": contacts},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dialers", type=int, default=1)
    parser.add_argument(
        "--mongo-metrics",
        action="store_true",
        help="Have the services count their store commands per collection; each run records them (`mongo`).",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Keep each run's databases and topics (to inspect what the services wrote).",
    )
    args = parser.parse_args()
    runs = []
    for run in range(1, args.runs + 1):
        result = asyncio.run(run_once(args, run))
        print(json.dumps({k: v for k, v in result.items() if k != "stages"}), flush=True)
        runs.append(result)
    keys = ("seconds_to_all_terminal", "calls_per_second", "max_projection_lag_ms", "upload_response_seconds")
    out = {
        "contacts": args.contacts,
        "dialers": args.dialers,
        **{k: statistics.median(r[k] for r in runs) for k in keys},
        "targets": {"calls_per_second": ">= 1000"},
        "runs": runs,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
