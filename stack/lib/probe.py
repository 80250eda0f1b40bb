"""Health probes and Kafka topic setup for stack/stack.sh.

Run with the project's venv (it needs aiokafka and pymongo):

    python stack/lib/probe.py kafka  --bootstrap 127.0.0.1:9092 --timeout 60 [--pid N]
    python stack/lib/probe.py mongo  --uri mongodb://127.0.0.1:27017/ --timeout 30 [--pid N]
    python stack/lib/probe.py http   --url http://127.0.0.1:8080/gateway/healthz --timeout 10 [--pid N]
    python stack/lib/probe.py topics --bootstrap 127.0.0.1:9092 --prefix bc. < "<name> <partitions>" lines

A probe loops until the part answers or --timeout seconds pass (--timeout 0: one attempt).
With --pid it gives up at once when that process has died.
Exit codes: 0 healthy, 1 not healthy in time, 3 the process died.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

DIED = 3


def _alive(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _kafka_once(bootstrap: str, timeout_s: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(timeout_s * 1000)),
        connections_max_idle_ms=10_000,
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        # A metadata request that the broker answers only once it is registered.
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    finally:
        await admin.close()


def _mongo_once(uri: str, timeout_s: float) -> None:
    import pymongo

    ms = max(500, int(timeout_s * 1000))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms, directConnection=True
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


def _http_once(url: str, timeout_s: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")


def _loop(check: Callable[[float], None], timeout: float, pid: int | None) -> int:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if not _alive(pid):
            print(f"process {pid} exited", file=sys.stderr)
            return DIED
        try:
            check(2.0)
            return 0
        except Exception as exc:  # any failure means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            print(last, file=sys.stderr)
            return 1
        time.sleep(0.25)


def _topics(bootstrap: str, prefix: str) -> int:
    wanted: dict[str, int] = {}
    for raw in sys.stdin:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            print(f"topics: cannot parse line {raw.rstrip()!r} (want '<name> <partitions>')", file=sys.stderr)
            return 1
        name = parts[0] if parts[0].startswith(prefix) else prefix + parts[0]
        wanted[name] = int(parts[1])
    if not wanted:
        return 0

    async def run() -> int:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                resp = await admin.create_topics(
                    [NewTopic(n, num_partitions=wanted[n], replication_factor=1) for n in missing],
                    timeout_ms=15000,
                )
                failed = []
                for err in resp.to_object().get("topic_errors", []):
                    code = err.get("error_code", 0)
                    if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS (a concurrent creator): fine
                        failed.append(f"{err.get('topic')}: error {code} {err.get('error_message') or ''}")
                if failed:
                    print("topics: could not create " + "; ".join(failed), file=sys.stderr)
                    return 1
            present = [n for n in wanted if n in existing]
            if present:
                for desc in await admin.describe_topics(present):
                    name = desc["topic"]
                    have = len(desc["partitions"])
                    if have != wanted[name]:
                        print(
                            f"topics: WARNING {name} exists with {have} partitions, shared.topics wants "
                            f"{wanted[name]} (left as is; delete the topic or the Kafka data to change it)",
                            file=sys.stderr,
                        )
            for n in wanted:
                state = "created" if n in missing else "exists"
                print(f"  topic {n:<40} partitions={wanted[n]:<4} {state}")
            # Have the broker create __consumer_offsets now, so the services' first group join
            # does not race its creation (GroupCoordinatorNotAvailable on a fresh broker).
            deadline = time.monotonic() + 15
            while True:
                try:
                    await admin.find_coordinator("bc-stack-warmup")
                    break
                except Exception as exc:
                    if time.monotonic() > deadline:
                        print(f"topics: WARNING group coordinator not ready yet: {exc}", file=sys.stderr)
                        break
                    await asyncio.sleep(0.2)
            return 0
        finally:
            await admin.close()

    return asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["kafka", "mongo", "http", "topics"])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--uri", default="mongodb://127.0.0.1:27017/")
    ap.add_argument("--url", default="")
    ap.add_argument("--prefix", default="bc.")
    ap.add_argument("--timeout", type=float, default=0)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()

    if a.kind == "kafka":
        return _loop(lambda t: asyncio.run(_kafka_once(a.bootstrap, t)), a.timeout, a.pid)
    if a.kind == "mongo":
        return _loop(lambda t: _mongo_once(a.uri, t), a.timeout, a.pid)
    if a.kind == "http":
        return _loop(lambda t: _http_once(a.url, t), a.timeout, a.pid)
    return _topics(a.bootstrap, a.prefix)


if __name__ == "__main__":
    sys.exit(main())
