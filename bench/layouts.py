"""Document layouts on the local FerretDB: the measurements behind docs/adr/0025 (the dispatcher's store).

    .venv/bin/python -m bench.layouts [--rounds 5]

Against the running stack's FerretDB (`make up`), in a scratch database dropped at the end, alternating the
layouts within each round so that both see the same machine:

- a lane segment of 512 entries: written and read as 512 sub-documents, and as one packed binary value;
- 2,000 leases: inserted with the contact as fields, and with the contact packed;
- 250 ended leases among 20,000: deleted with one `$in`, and with one `DeleteOne` per id in one command.

Writes bench/results/layouts.json: the median of every figure over the rounds, and every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pymongo import DeleteOne

from shared.mongo import make_client
from shared.settings import InfraSettings

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "layouts.json"
SEGMENT = 512
LEASES = 2_000


def entry(i: int, tag: str) -> dict[str, Any]:
    """A queue entry as the dispatcher stores it (short keys, variables as {k, v} items)."""
    return {
        "c": f"batch_{tag}_r{i}",
        "r": i,
        "p": f"+1415555{i % 10_000:04d}",
        "v": [
            {"k": "first_name", "v": "Ada"},
            {"k": "last_name", "v": "Lovelace"},
            {"k": "plan", "v": "gold"},
        ],
        "l": "America/Los_Angeles",
        "n": 1,
        "h": [],
    }


def lease(i: int, tag: str, *, packed: bool) -> dict[str, Any]:
    contact = entry(i, tag)
    doc: dict[str, Any] = {
        "_id": f"batch_{tag}_r{i}_a1",
        "workspace_id": "ws_bench",
        "partition": 3,
        "batch_id": f"batch_{tag}",
        "requested_at": datetime.now(UTC),
        "expires_at": datetime.now(UTC),
        "slot_start": 1.0,
        "slot_by": 1.04,
    }
    if packed:
        doc["contact"] = orjson.dumps(contact)
    else:
        doc |= contact
    return doc


async def timed(action: Any) -> float:
    started = time.perf_counter()
    await action
    return round((time.perf_counter() - started) * 1000, 2)


async def one_round(db: Any, n: int) -> dict[str, float]:
    tag = f"{n}x{time.monotonic_ns()}"
    entries = [entry(i, tag) for i in range(SEGMENT)]
    out: dict[str, float] = {}
    for name, value in (("segment_subdocuments", entries), ("segment_packed", orjson.dumps(entries))):
        collection = db[f"{name}_{n}"]
        out[f"{name}_write_ms"] = await timed(collection.insert_one({"_id": "s", "e": value}))
        out[f"{name}_read_ms"] = await timed(collection.find_one({"_id": "s"}))
    for name, packed in (("lease_fields", False), ("lease_packed", True)):
        docs = [lease(i, f"{tag}{name}", packed=packed) for i in range(LEASES)]
        ms = await timed(db[f"{name}_{n}"].insert_many(docs))
        out[f"{name}_insert_us_per_doc"] = round(ms * 1000 / LEASES, 1)
    leases = db[f"ended_{n}"]
    await leases.insert_many([lease(i, tag, packed=True) for i in range(20_000)])
    ids = [f"batch_{tag}_r{i}_a1" for i in range(500)]
    out["delete_250_in_ms"] = await timed(leases.delete_many({"_id": {"$in": ids[:250]}}))
    out["delete_250_by_id_ms"] = await timed(leases.bulk_write([DeleteOne({"_id": i}) for i in ids[250:]]))
    return out


async def measure(rounds: int) -> dict[str, Any]:
    infra = InfraSettings()
    client = make_client(infra, "bench-layouts")
    name = f"bench_layouts_{int(time.time())}"
    try:
        db = client[name]
        runs = [await one_round(db, n) for n in range(rounds)]
    finally:
        await client.drop_database(name)
        await client.close()
    return {
        "benchmark": "layouts",
        "measured_at": datetime.now(UTC).isoformat(),
        "command": f"python -m bench.layouts --rounds {rounds}",
        "medians": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(measure(args.rounds))
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["medians"], indent=2))


if __name__ == "__main__":
    main()
