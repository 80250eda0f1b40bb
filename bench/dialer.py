"""Dialer benchmark: one `python -m dialer` process, simulated provider, real Kafka and FerretDB.

    .venv/bin/python -m bench.dialer [--runs 3] [--instant-calls 20000] [--held-calls 2500]

Each run gets its own topic prefix and database, pre-loads `call-requests` with CallRequested messages,
then starts one dialer (a subprocess on a free port) and reads `call-events` back:

- `calls_per_second_instant` (time scale 0, target >= 2,000): calls / (last `call.ended` - first
  `call.started`, by Kafka record timestamps); every attempt must end exactly once.
- `max_simultaneous_calls` (every call talks exactly 2 s: test number +12025550109 with the agent's
  maximum duration at 2 s, time scale 1; target >= 1,000): the most calls between `call.answered` and
  `call.ended` at one moment, from the events; the dialer's own `batchcalls_dialer_active_calls` gauge
  peak is reported beside it.
- `rss_mb` at that load (target <= 250): the dialer process's peak resident memory, sampled every 50 ms.
- `calls_per_dialer_cpu_second_instant`: instant calls per CPU second the dialer itself used, i.e. what
  one dedicated core would sustain; on a shared 2-core machine the wall-clock rate also depends on what
  Kafka, FerretDB and everything else running take (`load_average_at_end` is recorded beside it).

Writes bench/results/dialer.json: medians over the runs, and every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import AgentSnapshot, CallRequested
from shared.kafka import EventPublisher, ensure_topics
from shared.mongo import make_client
from shared.settings import InfraSettings
from shared.topics import Topic

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "dialer.json"
HELD_NUMBER = "+12025550109"  # answers at once and talks until the agent's maximum duration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requests(n: int, *, held: bool) -> list[CallRequested]:
    now = datetime.now(UTC)
    batch = f"batch_{uuid4().hex[:12]}"
    agent = AgentSnapshot(
        agent_id="agent_bench",
        name="Bench",
        prompt_template="Hello {first_name}, this is a reminder about {topic}.",
        variables=("first_name", "topic"),
        defaults={"topic": "your appointment"},
        max_call_seconds=2 if held else 600,
    )
    out = []
    for row in range(1, n + 1):
        contact = f"{batch}_r{row}"
        # Random-looking valid US numbers: the seeded outcome mix decides each call.
        phone = HELD_NUMBER if held else f"+1415{2000000 + row * 7 % 7999999:07d}"
        out.append(
            CallRequested(
                occurred_at=now,
                workspace_id=f"ws_bench_{row % 8}",
                correlation_id=batch,
                batch_id=batch,
                contact_id=contact,
                attempt_id=f"{contact}_a1",
                attempt_number=1,
                phone_number=phone,
                variables={"first_name": f"Contact {row}"},
                agent=agent,
                lease_expires_at=now + timedelta(minutes=15),
            )
        )
    return out


class _Sampler(threading.Thread):
    """Peak RSS of a process (and its children), sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._proc.memory_info().rss + sum(
                    c.memory_info().rss for c in self._proc.children(recursive=True)
                )
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


async def _gauge_peak(port: int, stop: asyncio.Event) -> float:
    peak = 0.0
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            try:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
                for line in text.splitlines():
                    if line.startswith("batchcalls_dialer_active_calls "):
                        peak = max(peak, float(line.split()[-1]))
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    return peak


async def _collect(
    infra: InfraSettings, expected_ended: int, within: float
) -> dict[str, list[tuple[int, str]]]:
    """(timestamp ms, attempt id) of each event kind on call-events, until `expected_ended` ends arrive."""
    topic = Topic.CALL_EVENTS.name_with(infra.topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(Topic.CALL_EVENTS.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    seen: dict[str, list[tuple[int, str]]] = {"started": [], "answered": [], "ended": []}
    try:
        async with asyncio.timeout(within):
            while len(seen["ended"]) < expected_ended:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    for r in records:
                        body = json.loads(r.value)
                        kind = body["type"].removeprefix("call.")
                        if kind in seen:
                            seen[kind].append((r.timestamp, body["attempt_id"]))
    finally:
        await consumer.stop()
    return seen


def _spawn(environment: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dialer"], env=environment, cwd=ROOT)


async def _start_dialer(infra: InfraSettings, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    environment = {
        **os.environ,
        "BC_TOPIC_PREFIX": infra.topic_prefix,
        "BC_MONGO_DB": infra.mongo_db,
        "BC_LOG_LEVEL": "WARNING",
        "DIALER_HTTP_PORT": str(port),
        "DIALER_CONSUMER_GROUP": f"{infra.topic_prefix}dialer",
        **env,
    }
    proc = _spawn(environment)
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the dialer exited at start")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return proc, port
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the dialer did not become ready")


async def _run(n: int, *, held: bool, max_active: int) -> dict[str, Any]:
    tag = uuid4().hex[:8]
    infra = InfraSettings(topic_prefix=f"bench{tag}.", mongo_db=f"bench_dialer_{tag}")
    await ensure_topics(infra, (Topic.CALL_REQUESTS, Topic.CALL_EVENTS))
    publisher = EventPublisher(infra, "bench-dialer")
    await publisher.start()
    try:
        requests = _requests(n, held=held)
        for i in range(0, n, 5000):
            await publisher.publish_many(requests[i : i + 5000])
    finally:
        await publisher.stop()
    env = {"DIALER_SIM_TIME_SCALE": "1" if held else "0", "DIALER_MAX_ACTIVE_CALLS": str(max_active)}
    proc, port = await _start_dialer(infra, **env)
    ps = psutil.Process(proc.pid)
    cpu_at_ready = sum(ps.cpu_times()[:2])
    sampler = _Sampler(proc.pid)
    sampler.start()
    stop = asyncio.Event()
    gauge = asyncio.create_task(_gauge_peak(port, stop))
    try:
        seen = await _collect(infra, n, within=600)
        cpu_seconds = sum(ps.cpu_times()[:2]) - cpu_at_ready
    finally:
        stop.set()
        sampler.stop()
        gauge_peak = await gauge
        proc.terminate()
        proc.wait(120)
        client = make_client(infra, "bench-dialer")
        await client.drop_database(infra.mongo_db)
        await client.close()
    ended_ids = [a for _, a in seen["ended"]]
    assert len(set(ended_ids)) == n and len(ended_ids) == n, "every attempt ends exactly once"
    assert len({a for _, a in seen["started"]}) == len(seen["started"]) == n, "every attempt starts once"
    first = min(t for t, _ in seen["started"])
    last = max(t for t, _ in seen["ended"])
    result: dict[str, Any] = {
        "calls": n,
        "seconds": round((last - first) / 1000, 3),
        "calls_per_second": round(n / max((last - first) / 1000, 0.001), 1),
        "rss_mb": round(sampler.peak / 2**20, 1),
        "dialer_cpu_ms_per_call": round(cpu_seconds * 1000 / n, 3),
        "calls_per_dialer_cpu_second": round(n / max(cpu_seconds, 0.001), 1),
        "gauge_peak_active_calls": gauge_peak,
    }
    if held:
        result["max_simultaneous_calls"] = _max_overlap(seen["answered"], seen["ended"])
    return result


def _max_overlap(answered: list[tuple[int, str]], ended: list[tuple[int, str]]) -> int:
    points = sorted([(t, 1) for t, _ in answered] + [(t, -1) for t, _ in ended], key=lambda p: (p[0], p[1]))
    live = peak = 0
    for _, delta in points:
        live += delta
        peak = max(peak, live)
    return peak


async def main(args: argparse.Namespace) -> dict[str, Any]:
    instant = [
        await _run(args.instant_calls, held=False, max_active=args.max_active) for _ in range(args.runs)
    ]
    held = [await _run(args.held_calls, held=True, max_active=args.max_active) for _ in range(args.runs)]
    summary = {
        "calls_per_second_instant": statistics.median(r["calls_per_second"] for r in instant),
        "max_simultaneous_calls": statistics.median(r["max_simultaneous_calls"] for r in held),
        "rss_mb": statistics.median(r["rss_mb"] for r in held),
        "rss_mb_instant": statistics.median(r["rss_mb"] for r in instant),
        "calls_per_dialer_cpu_second_instant": statistics.median(
            r["calls_per_dialer_cpu_second"] for r in instant
        ),
        "targets": {"calls_per_second_instant": 2000, "max_simultaneous_calls": 1000, "rss_mb": 250},
        "settings": {"max_active_calls": args.max_active, "runs": args.runs, "cpus": os.cpu_count()},
        "load_average_at_end": os.getloadavg()[0],
        "runs": {"instant": instant, "held_2s": held},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--instant-calls", type=int, default=20_000)
    parser.add_argument("--held-calls", type=int, default=2_500)
    parser.add_argument("--max-active", type=int, default=2_000)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
