"""Ingest benchmark: a realistic 20 MB CSV uploaded through the gateway against the running stack.

    .venv/bin/python -m bench.ingest [--runs 3] [--gateway http://127.0.0.1:8080]

Writes bench/results/ingest.json: rows, bytes, post_seconds (request sent → response received),
publish_seconds (request sent → `BatchIngested` seen on Kafka; ingest publishes it only after every contact
event of the batch was acknowledged, so this is an upper bound of "last contact acknowledged"),
rows_per_second (rows / publish_seconds), floor_single_core_seconds (the same numbers through phonenumbers
in one plain loop, in this process, after the upload) and peak_rss_mb of the ingest process (its validation
workers included), sampled every 50 ms. Medians over the runs, and every run.

Two modes (`--mode both` by default): `stack` uploads through the running stack's gateway to its ingest (if
nothing listens on the ingest port the benchmark starts `python -m ingest` there itself), while the stack's
dispatcher and status consume the same events; `isolated` starts a private ingest behind a private nginx
(rendered from the stack's template) on the stack's Kafka and FerretDB, with topics and a database of its
own, so that ingest alone is measured. The headline figures are the stack mode's; both are in the JSON.
After each run the contacts topic is read back to check that every row was published exactly once, and the
batch is cancelled. In stack mode each run starts once the stack's dispatcher and status have caught up
(`settle_seconds_before`), so no run shares the machine with the previous run's cancellation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.consumer_lag import ConsumerLagMonitor
from shared.kafka import delete_topics, ensure_topics
from shared.mongo import database, make_client
from shared.settings import InfraSettings
from shared.topics import Topic
from shared.workspaces import Plan, WorkspaceDirectory

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULT = ROOT / "bench" / "results" / "ingest.json"
TARGET_BYTES = 20 * 1024 * 1024 - 64 * 1024  # under the 20 MB limit with room for the multipart framing

# Number shapes phonenumbers accepts as valid (checked when the file is generated), by country.
_SHAPES = {
    "US": ("+1{a}{b}{n7}", ["212", "310", "415", "512", "617", "646", "702", "808", "917", "206"]),
    "GB": ("+447{n9}", None),
    "FR": ("+336{n8}", None),
    "DE": ("+4917{n9}", None),
    "AU": ("+614{n8}", None),
    "CA": ("+1{a}{b}{n7}", ["416", "604", "514", "403", "613"]),
    "IN": ("+919{n9}", None),
    "BR": ("+55119{n8}", None),
}
_FIRST = ["John", "Jane", "Ahmed", "Maria", "Wei", "Olga", "Kwame", "Sofia", "Luca", "Aiko", "Zoë", "José"]
_LAST = ["Doe", "Smith", "García", "Müller", "Nguyen", "Okafor", "Rossi", "Kowalski", "Tanaka", "Silva"]
_PLANS = ["Premium Customer", "Standard Customer", "Trial", "Enterprise"]
_REGIONS = ["West Coast", "East Coast", "EMEA", "APAC", "LatAm"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _number(rng: random.Random) -> str:
    region = rng.choices(list(_SHAPES), weights=[40, 15, 10, 10, 5, 8, 7, 5])[0]
    shape, areas = _SHAPES[region]
    for _ in range(20):
        text = shape.format(
            a=rng.choice(areas) if areas else "",
            b=str(rng.randint(2, 9)),
            n7=_digits(rng, 6),
            n8=_digits(rng, 8),
            n9=_digits(rng, 9),
        )
        if phonenumbers.is_valid_number(phonenumbers.parse(text, None)):
            break
    if region == "US" and rng.random() < 0.15:
        national = text[2:]  # spreadsheets strip the '+1': the workspace's default region (US) applies
        return rng.choice([national, f"({national[:3]}) {national[3:6]}-{national[6:]}"])
    return text


def generate(path: Path, seed: int = 20260101) -> int:
    """A ~20 MB CSV: mixed countries, ~2% invalid numbers, ~2% duplicates, custom columns. Returns rows."""
    rng = random.Random(seed)
    numbers: list[str] = []
    rows = 0
    size = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        header = "phone_number,first_name,last_name,email,plan,region,account,notes\n"
        out.write(header)
        size += len(header.encode())
        while True:
            roll = rng.random()
            if roll < 0.02:
                phone = rng.choice(["12345", "+999123456", "not a number", "+1555", "", "+44 20"])
            elif roll < 0.04 and numbers:
                phone = rng.choice(numbers)
            else:
                phone = _number(rng)
                numbers.append(phone)
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            notes = rng.choice(["", "", "after lunch", '"says ""Mr."""', '"renewal, soon"'])
            line = (
                f"{phone},{first},{last},{first.lower()}@example.com,"
                f"{rng.choice(_PLANS)},{rng.choice(_REGIONS)},A-{rng.randint(10**5, 10**6 - 1)},{notes}\n"
            )
            encoded = len(line.encode())
            if size + encoded > TARGET_BYTES:
                break
            out.write(line)
            size += encoded
            rows += 1
    tmp.replace(path)
    return rows


def csv_file() -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "ingest-20mb.csv"
    if not path.exists():
        print("generating", path, file=sys.stderr)
        generate(path)
    return path


def floor_single_core(path: Path, region: str) -> float:
    """Every number of the file through phonenumbers (parse, validate, format) in one plain loop."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        raws = [r[0].strip() for r in reader if r]
    started = time.perf_counter()
    for raw in raws:
        try:
            parsed = phonenumbers.parse(raw, None if raw.startswith("+") else region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return time.perf_counter() - started


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ingest_process(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.peak_main = 0
        self.peak_total = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                main = self.process.memory_info().rss
                total = main + sum(c.memory_info().rss for c in self.process.children(recursive=True))
            except psutil.Error:
                total = main = 0
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, total)
            self._halt.wait(0.05)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()


def _partitions(topic: Topic, infra: InfraSettings) -> list[TopicPartition]:
    return [TopicPartition(topic.name_with(infra.topic_prefix), p) for p in range(topic.partitions)]


async def _wait_ingested(consumer: AIOKafkaConsumer, batch_id: str, within: float) -> float:
    deadline = time.monotonic() + within
    needle = f'"batch_id":"{batch_id}"'.encode()
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                if record.value and needle in record.value and b'"batch.ingested"' in record.value:
                    return time.perf_counter()
    raise TimeoutError(f"no batch.ingested for {batch_id} within {within} s")


async def _count_contacts(
    infra: InfraSettings, start: dict[TopicPartition, int], batch_id: str
) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = list(start)
        consumer.assign(parts)
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        ends = dict(await consumer.end_offsets(parts))
        needle = f'"batch_id":"{batch_id}"'.encode()
        seen: set[int] = set()
        counts = {"events": 0, "accepted": 0, "skipped": 0}

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in parts])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    if record.value and needle in record.value:
                        body = json.loads(record.value)
                        counts["events"] += 1
                        counts["accepted" if body["type"] == "contact.accepted" else "skipped"] += 1
                        seen.add(body["row_number"])
        counts["distinct_rows"] = len(seen)
        return counts
    finally:
        await consumer.stop()


async def one_run(
    gateway: str,
    body: bytes,
    rows: int,
    headers: dict[str, str],
    agent_id: str,
    infra: InfraSettings,
    port: int,
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    process = _ingest_process(port)
    if process is None:
        raise SystemExit(f"no ingest process listens on {port}")
    sampler = RssSampler(process)
    try:
        parts = _partitions(Topic.BATCHES, infra)
        consumer.assign(parts)
        for tp, offset in (await consumer.end_offsets(parts)).items():
            consumer.seek(tp, offset)
        start_contacts = dict(await consumer.end_offsets(_partitions(Topic.CONTACTS, infra)))
        sampler.start()
        async with httpx.AsyncClient(timeout=120) as client:
            sent = time.perf_counter()
            response = await client.post(
                f"{gateway}/v1/batch-calls",
                headers=headers,
                files={"file": ("contacts.csv", body, "text/csv")},
                data={"agentId": agent_id, "name": "bench"},
            )
            answered = time.perf_counter()
        response.raise_for_status()
        batch_id = response.json()["batchId"]
        ingested = await _wait_ingested(consumer, batch_id, within=600)
    finally:
        sampler.stop()
        await consumer.stop()
    check = await _count_contacts(infra, start_contacts, batch_id)
    async with httpx.AsyncClient(timeout=60) as client:
        # Cancel the benchmark's batch so the stack's dispatcher does not go on to queue 250,000 calls.
        await client.delete(f"{gateway}/v1/batch-calls/{batch_id}", headers=headers)
    publish_seconds = ingested - sent
    return {
        "batch_id": batch_id,
        "total_calls": response.json()["totalCalls"],
        "post_seconds": round(answered - sent, 3),
        "publish_seconds": round(publish_seconds, 3),
        "rows_per_second": round(rows / publish_seconds),
        "peak_rss_mb": round(sampler.peak_total / 2**20, 1),
        "peak_rss_main_mb": round(sampler.peak_main / 2**20, 1),
        "kafka_check": check,
    }


async def setup(gateway: str, infra: InfraSettings) -> tuple[dict[str, str], str]:
    client = make_client(infra, "bench-ingest")
    try:
        directory = WorkspaceDirectory(database(client, infra))
        workspace_id = f"ws_bench_{secrets.token_hex(4)}"
        plan = Plan(name="bench", max_records_per_batch=300_000, requests_per_minute=600)
        await directory.create_workspace(workspace_id, "ingest benchmark", plan, default_region="US")
        key = await directory.issue_key(workspace_id, "bench")
    finally:
        await client.close()
    headers = {"x-api-key": key.secret_key, "x-workspace-id": workspace_id}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway}/v1/agents",
            headers=headers,
            json={"name": "Bench agent", "prompt": "Hello {first_name}, about your {plan} plan ({region})."},
        )
        response.raise_for_status()
    return headers, str(response.json()["id"])


def _start_ingest(port: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **extra_env, "INGEST_HTTP_PORT": str(port)}
    log = (WORK / "ingest-server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("ingest did not become ready; see bench/work/ingest-server.log")


def _render_gateway(workdir: Path, ingest_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """A private nginx from the stack's own template, routing to a private ingest (isolated mode)."""
    port = _free_port()
    nginx = workdir / "nginx"
    for sub in ("tmp/client_body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
        (nginx / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "GATEWAY_PORT": str(port),
        "INGEST_PORT": str(ingest_port),
        "STATUS_PORT": str(_free_port()),
        "STACK_RUN": str(nginx),
        "STACK_LOGS": str(nginx / "logs"),
        "STACK_NGINX": str(nginx),
    }
    template = (ROOT / "stack" / "nginx" / "nginx.conf.template").read_text()
    conf = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    (nginx / "nginx.conf").write_text(conf)
    log = (nginx / "logs" / "nginx.log").open("ab")
    proc = subprocess.Popen(
        ["nginx", "-p", str(nginx), "-c", str(nginx / "nginx.conf"), "-e", "stderr"], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/gateway/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the private gateway did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _drop(infra: InfraSettings) -> None:
    client = make_client(infra, "bench-ingest-cleanup")
    await client.drop_database(infra.mongo_db)
    await client.close()
    await delete_topics(infra)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "post_seconds": statistics.median(r["post_seconds"] for r in runs),
        "publish_seconds": statistics.median(r["publish_seconds"] for r in runs),
        "rows_per_second": statistics.median(r["rows_per_second"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


STACK_GROUPS = {"dispatcher": (Topic.BATCHES, Topic.CONTACTS), "status": tuple(Topic)}
"""The stack's consumers of an upload's events, and the topics they read."""


async def settle(infra: InfraSettings, within: float = 900) -> float:
    """Wait until the stack's consumers have caught up (three probes in a row a second apart find no lag);
    returns the seconds it took. A run starts from a quiet stack: the previous run's batch was cancelled,
    and the dispatcher's sweep of its 250,000 contacts and their projection would otherwise share the
    machine with the next upload. The run itself still shares it with their work on its own events."""
    monitors = [ConsumerLagMonitor(infra, group, topics) for group, topics in STACK_GROUPS.items()]
    started = time.monotonic()
    quiet = 0
    try:
        while quiet < 3:
            if time.monotonic() - started > within:
                raise SystemExit(f"the stack's consumers did not catch up within {within:.0f} s")
            await asyncio.sleep(1)
            try:
                lag = sum([sum((await m.measure_once()).values()) for m in monitors])
            except Exception:  # a probe during a rebalance; the next one counts
                lag = -1
            quiet = quiet + 1 if lag == 0 else 0
    finally:
        for monitor in monitors:
            await monitor.close()
    return round(time.monotonic() - started, 1)


def measure(mode: str, runs: int, gateway: str, ingest_port: int, path: Path, rows: int) -> dict[str, Any]:
    """`stack`: the running stack (its ingest, gateway and the consumers that react to the events).
    `isolated`: a private ingest behind a private gateway on the stack's Kafka and FerretDB, with topics and
    a database of its own, so no other service consumes the batch while it is published."""
    started: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None
    infra = InfraSettings()
    env: dict[str, str] = {}
    if mode == "isolated":
        tag = secrets.token_hex(4)
        infra = InfraSettings(topic_prefix=f"bench{tag}.", mongo_db=f"bench_ingest_{tag}")
        asyncio.run(ensure_topics(infra))
        env = {"BC_TOPIC_PREFIX": infra.topic_prefix, "BC_MONGO_DB": infra.mongo_db}
        ingest_port = _free_port()
        started = _start_ingest(ingest_port, env)
        nginx, gateway = _render_gateway(WORK / f"gateway-{tag}", ingest_port)
    elif not _listening(ingest_port):
        started = _start_ingest(ingest_port, env)
    results = []
    try:
        headers, agent_id = asyncio.run(setup(gateway, infra))
        body = path.read_bytes()
        for i in range(runs):
            settled = asyncio.run(settle(infra)) if mode == "stack" else 0.0
            run = asyncio.run(one_run(gateway, body, rows, headers, agent_id, infra, ingest_port))
            run["settle_seconds_before"] = settled
            print(f"{mode} run {i + 1}: {json.dumps(run)}", file=sys.stderr)
            results.append(run)
    finally:
        for proc in (started, nginx):
            if proc is not None:
                proc.terminate()
                proc.wait(60)
        if mode == "isolated":
            asyncio.run(_drop(infra))
    return {
        **_summary(results),
        "ingest_started_by_bench": started is not None,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "all_runs": results,
    }


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--runs", type=int, default=3)
    args.add_argument("--mode", choices=["stack", "isolated", "both"], default="both")
    args.add_argument("--gateway", default="http://127.0.0.1:8080")
    args.add_argument("--ingest-port", type=int, default=int(os.environ.get("INGEST_HTTP_PORT", "8001")))
    opts = args.parse_args()
    path = csv_file()
    with path.open(encoding="utf-8") as f:
        rows = sum(1 for line in f if line.strip()) - 1
    modes = ["stack", "isolated"] if opts.mode == "both" else [opts.mode]
    measured = {mode: measure(mode, opts.runs, opts.gateway, opts.ingest_port, path, rows) for mode in modes}
    floor = floor_single_core(path, "US")
    headline = measured.get("stack") or measured["isolated"]
    result = {
        "rows": rows,
        "bytes": path.stat().st_size,
        **{
            k: headline[k]
            for k in ("runs", "post_seconds", "publish_seconds", "rows_per_second", "peak_rss_mb")
        },
        "floor_single_core_seconds": round(floor, 3),
        "headline_mode": "stack" if "stack" in measured else "isolated",
        "targets": {"rows_per_second": 30_000, "post_seconds": 5, "peak_rss_mb": 300},
        "machine": {"cpus": os.cpu_count()},
        "modes": measured,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    brief = {k: v for k, v in result.items() if k != "modes"}
    brief["modes"] = {m: {k: v for k, v in r.items() if k != "all_runs"} for m, r in measured.items()}
    print(json.dumps(brief, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
