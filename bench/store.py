"""Store micro-benchmark: our own access patterns against the FerretDB the stack runs (ADR 0005).

    .venv/bin/python -m bench.store --backend sqlite|postgresql [--runs 3] [--sizes 1000,10000,100000]
                                    [--ops 300] [--concurrency 16] [--hang-checks]

`--backend` only names the section the figures go to: the bench talks to `BC_MONGO_URL` and does not know
which backend FerretDB runs on (start the stack with `BC_FERRETDB_BACKEND=...`). Each run uses a database of
its own, dropped at the end. A collection with a unique `_id` and an index on `group` (ten documents per
value) grows to each size in `--sizes` (bulk inserts of 1,000, timed as `fill_docs_per_second`); at each size:

- `insert_by_id`: `insert_one` of a new document, one at a time (what the dialer does twice per call);
- `insert_concurrent`: `--ops` x 4 `insert_one` with `--concurrency` in flight (a service's pool), as ops/s;
- `find_by_id`: `find_one({"_id": ...})` of a random existing document;
- `find_by_indexed_field`: `find({"group": ...})`, ten documents, fully read (the dispatcher's and the status
  read models' equality lookups);
- `update_by_id`: `update_one({"_id": ...}, {"$inc": ..., "$set": ...})` of a random existing document (the
  projections' read-modify-write).

Each sequential measurement stops after `--ops` operations or 15 s, whichever is first (at least 5 samples;
`samples` says how many).

Sequential operations report p50 / p99 in ms and ops/s. `explain` of the two finds records `filterPushdown`
and whether the plan names an index. `--hang-checks` then tries, each against a 30 s timeout, the two
overlapping-operations patterns that hang FerretDB 1.24 on SQLite (ADR 0004): 150 concurrent inserts into a
collection that does not exist yet, and one `bulk_write` of 150 `UpdateOne` (a hang there stops that FerretDB
for every client: restart it with `stack/stack.sh restart ferretdb`).

Writes bench/results/store.json: one section per backend (medians over the runs, and every run); the other
backend's section is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from pymongo import AsyncMongoClient, UpdateOne

from shared.mongo import Document

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "store.json"
COLL = "contacts"
GROUP_SIZE = 10
HANG_OPS = 150
HANG_TIMEOUT_S = 30.0
OP_SECONDS = 15.0
MIN_SAMPLES = 5


def _doc(i: int) -> Document:
    # About the size of a call document: a few ids, a phone number, a status, timestamps.
    return {
        "_id": f"c{i:08d}",
        "group": i // GROUP_SIZE,
        "workspace_id": f"ws_{i % 8}",
        "phone": f"+1415{2000000 + i % 7999999:07d}",
        "status": "queued",
        "attempts": 0,
        "updated_at": datetime.now(UTC),
        "note": "x" * 120,
    }


def _ms_stats(samples: list[float]) -> dict[str, float]:
    """p50 / p99 in ms and the sequential rate."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "ops_per_second": round(len(ordered) / sum(ordered), 1),
    }


async def _timed(n: int, op: Any) -> dict[str, float]:
    # At most n operations, and no more once OP_SECONDS have passed (a scan of 100,000 documents on SQLite
    # takes seconds), but at least MIN_SAMPLES.
    samples: list[float] = []
    start = time.perf_counter()
    for k in range(n):
        if len(samples) >= MIN_SAMPLES and time.perf_counter() - start > OP_SECONDS:
            break
        t = time.perf_counter()
        await op(k)
        samples.append(time.perf_counter() - t)
    return _ms_stats(samples) | {"samples": len(samples)}


def _plan_uses_index(plan: Any) -> bool:
    # PostgreSQL: an "Index Scan" / "Bitmap Index Scan" node; SQLite: "USING INDEX" / "PRIMARY KEY".
    text = json.dumps(plan, default=str)
    return any(mark in text for mark in ("Index Scan", "Index Only Scan", "USING INDEX", "PRIMARY KEY"))


async def _explain(client: AsyncMongoClient[Document], db: str, flt: Document) -> dict[str, Any]:
    out = await client[db].command("explain", {"find": COLL, "filter": flt})
    return {
        "filterPushdown": out.get("filterPushdown"),
        "uses_index": _plan_uses_index(out.get("queryPlanner")),
    }


async def _at_size(
    client: AsyncMongoClient[Document], db_name: str, first_new: int, ops: int, concurrency: int
) -> tuple[dict[str, Any], int]:
    """Every measured operation on a collection of `first_new` documents; returns how many it now has."""
    coll = client[db_name][COLL]
    count = first_new
    rng = random.Random(count)
    next_id = first_new
    at: dict[str, Any] = {}

    async def insert(_: int) -> None:
        nonlocal next_id
        next_id += 1
        await coll.insert_one(_doc(next_id - 1))

    at["insert_by_id"] = await _timed(ops, insert)

    sem = asyncio.Semaphore(concurrency)

    async def insert_limited(i: int) -> None:
        async with sem:
            await coll.insert_one(_doc(i))

    total = ops * 4
    t = time.perf_counter()
    await asyncio.gather(*(insert_limited(i) for i in range(next_id, next_id + total)))
    next_id += total
    at["insert_concurrent"] = {"ops_per_second": round(total / (time.perf_counter() - t), 1)}

    async def find_id(_: int) -> None:
        found = await coll.find_one({"_id": f"c{rng.randrange(count):08d}"})
        assert found is not None

    at["find_by_id"] = await _timed(ops, find_id)

    async def find_group(_: int) -> None:
        docs = await coll.find({"group": rng.randrange(count // GROUP_SIZE)}).to_list()
        assert len(docs) == GROUP_SIZE, len(docs)

    at["find_by_indexed_field"] = await _timed(ops, find_group)

    async def update_id(k: int) -> None:
        change = {"$inc": {"attempts": 1}, "$set": {"status": f"s{k % 5}", "updated_at": datetime.now(UTC)}}
        res = await coll.update_one({"_id": f"c{rng.randrange(count):08d}"}, change)
        assert res.matched_count == 1

    at["update_by_id"] = await _timed(ops, update_id)
    at["explain"] = {
        "find_by_id": await _explain(client, db_name, {"_id": "c00000001"}),
        "find_by_indexed_field": await _explain(client, db_name, {"group": 1}),
    }
    at["documents"] = next_id
    return at, next_id


async def run_once(url: str, sizes: list[int], ops: int, concurrency: int) -> dict[str, Any]:
    """Grows one collection through `sizes`, measuring at each."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, maxPoolSize=concurrency, tz_aware=True)
    db_name = f"bench_store_{uuid4().hex[:8]}"
    coll = client[db_name][COLL]
    result: dict[str, Any] = {"database": db_name, "sizes": {}}
    try:
        await client[db_name].create_collection(COLL)
        await coll.create_index("group")
        fill_s = 0.0
        n = 0
        for size in sizes:
            t = time.perf_counter()
            while n < size:
                batch = [_doc(i) for i in range(n, min(size, n + 1000))]
                await coll.insert_many(batch, ordered=False)
                n += len(batch)
            fill_s += time.perf_counter() - t
            at, n = await _at_size(client, db_name, n, ops, concurrency)
            result["sizes"][str(size)] = at
            print(f"  size {size}: {json.dumps(at)}", flush=True)
        result["fill_docs_per_second"] = round(sizes[-1] / fill_s, 1)
    finally:
        await client.drop_database(db_name)
        await client.close()
    return result


async def _hang_check(url: str, name: str, work: Any) -> dict[str, Any]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, maxPoolSize=HANG_OPS + 10, tz_aware=True)
    db_name = f"bench_hang_{uuid4().hex[:8]}"
    t = time.perf_counter()
    outcome: dict[str, Any]
    try:
        await asyncio.wait_for(work(client[db_name]), HANG_TIMEOUT_S)
        outcome = {"hung": False, "seconds": round(time.perf_counter() - t, 2)}
    except TimeoutError:
        outcome = {"hung": True, "seconds": HANG_TIMEOUT_S}
    except Exception as exc:  # an error is an answer too: record it
        outcome = {"hung": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if not outcome["hung"]:
        await client.drop_database(db_name)
    await client.close()
    print(f"  hang check {name}: {outcome}", flush=True)
    return outcome


async def hang_checks(url: str) -> dict[str, Any]:
    """ADR 0004's two triggers, with more than 100 operations at once."""

    async def create_under_overlap(db: Any) -> None:
        await asyncio.gather(*(db["fresh"].insert_one({"_id": i}) for i in range(HANG_OPS)))

    async def big_bulk(db: Any) -> None:
        await db["bulk"].insert_many([{"_id": i, "n": 0} for i in range(HANG_OPS)])
        res = await db["bulk"].bulk_write(
            [UpdateOne({"_id": i}, {"$inc": {"n": 1}}) for i in range(HANG_OPS)], ordered=False
        )
        assert res.modified_count == HANG_OPS

    return {
        f"concurrent_inserts_creating_collection_{HANG_OPS}": await _hang_check(
            url, "create", create_under_overlap
        ),
        f"bulk_write_update_one_{HANG_OPS}": await _hang_check(url, "bulk", big_bulk),
    }


def _median_section(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"fill_docs_per_second": statistics.median(r["fill_docs_per_second"] for r in runs)}
    for size in runs[0]["sizes"]:
        at: dict[str, Any] = {}
        for op, figures in runs[0]["sizes"][size].items():
            if op in ("explain", "documents"):
                at[op] = figures
                continue
            at[op] = {key: statistics.median(r["sizes"][size][op][key] for r in runs) for key in figures}
        out[size] = at
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    url = os.environ.get("BC_MONGO_URL", "mongodb://127.0.0.1:27017/")
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    for i in range(args.runs):
        print(f"{args.backend}: run {i + 1}/{args.runs}", flush=True)
        runs.append(await run_once(url, sizes, args.ops, args.concurrency))
    result: dict[str, Any] = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    # --runs 0 --hang-checks adds the hang checks to the figures already there (they may stop that FerretDB).
    section: dict[str, Any] = result.get(args.backend, {}) if not runs else {}
    if runs:
        section |= {
            "medians": _median_section(runs),
            "settings": {"runs": args.runs, "sizes": sizes, "ops": args.ops, "concurrency": args.concurrency},
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "runs": runs,
        }
    section.setdefault("commands", []).append("python -m bench.store " + " ".join(sys.argv[1:]))
    if args.hang_checks:
        section["hang_checks"] = await hang_checks(url)
    result[args.backend] = section
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", required=True, help="section name, e.g. sqlite or postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hang-checks", action="store_true")
    summary = asyncio.run(main(parser.parse_args()))
    print(json.dumps(summary.get("medians", summary.get("hang_checks")), indent=2))
