"""The status service against real Kafka and FerretDB: events published as the other services would are
projected, served by the API in the reference's shapes, streamed, exported, replayed and sent as webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn

from shared.events import BatchCancelled, BatchCompleted
from shared.mongo import database, make_client
from status.adapters.documents import LAYOUT, call_from_doc, listing_from_doc
from status.adapters.list_pages import page_members
from status.adapters.mongo_read_models import CALLS, META, OUTBOX, PAGES, MongoReadModels
from status.domain.signing import verify
from tests.integration.status.conftest import StatusEnv, client, free_port, wait_for
from tests.unit.status.scenarios import History, history

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on loopback that records every POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, str], bytes]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.received.append((scope["path"], headers, body))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.should_exit = True
        if self._task:
            await self._task


def _final(h: History) -> BatchCompleted | BatchCancelled:
    last = h.messages[-1]
    assert isinstance(last, BatchCompleted | BatchCancelled)
    return last


async def _publish(env: StatusEnv, h: History) -> None:
    await env.publisher.publish_many(h.messages)


async def _sse(
    http: Any, path: str, last_event_id: str
) -> AsyncIterator[tuple[str | None, str, dict[str, Any]]]:
    async with http.stream("GET", path, headers={"Last-Event-ID": last_event_id}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id: str | None = None
        kind = "message"
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                yield event_id, kind, json.loads(line[6:])
                event_id, kind = None, "message"


@pytest.fixture(scope="module")
async def projected(status_env: StatusEnv) -> AsyncIterator[dict[str, Any]]:
    """A status service that projected one whole batch, with a workspace webhook and a per-batch webhook."""
    async with Receiver() as receiver:
        running = await status_env.start("status-main")
        try:
            async with client(running, status_env.tenant) as http:
                created = await http.post(
                    "/v1/webhooks", json={"url": f"{receiver.url}/workspace", "description": "test"}
                )
                assert created.status_code == 201, created.text
                hook = created.json()
                t0 = datetime.now(UTC) - timedelta(minutes=30)
                h = history(
                    4242,
                    rows=230,
                    workspace_id=status_env.tenant.workspace_id,
                    batch_id=f"batch_{int(time.time() * 1000):x}",
                    webhook_url=f"{receiver.url}/batch",
                    t0=t0,
                )
                await _publish(status_env, h)

                async def complete() -> dict[str, Any] | None:
                    body: dict[str, Any] = (await http.get(f"/v1/batch-calls/{h.batch_id}")).json()
                    return body if body.get("isComplete") else None

                body = await wait_for(complete, within=120)
                yield {"running": running, "history": h, "status": body, "hook": hook, "receiver": receiver}
        finally:
            await running.stop()


async def test_batch_status_has_the_reference_shape_and_final_counts(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    h: History = projected["history"]
    body = projected["status"]
    final = _final(h).counts
    assert set(body) >= {"id", "status", "isComplete", "totalCalls", "progress", "timestamp"}
    assert body["id"] == h.batch_id and body["totalCalls"] == h.rows == 230
    progress = body["progress"]
    assert set(progress) >= {
        "waiting", "active", "completed", "failed", "total", "startTime", "lastCompletedTime",
        "completedTime", "averageCallDuration", "recent_calls",
    }  # fmt: skip
    assert (progress["waiting"], progress["active"]) == (0, 0)
    assert progress["completed"] == final.completed
    assert progress["failed"] == final.failed  # skipped rows count as failed, as the reference does
    assert progress["skipped"] == final.skipped
    assert progress["completed"] + progress["failed"] + progress["cancelled"] == progress["total"] == 230
    assert body["status"] in ("completed", "failed")
    assert all(isinstance(progress[k], int) for k in ("startTime", "lastCompletedTime", "completedTime"))
    assert len(progress["recent_calls"]) == 10
    assert set(progress["recent_calls"][0]) >= {"jobId", "status", "phone_number", "completedAt"}


async def test_flat_status_and_both_prefixes(projected: dict[str, Any], status_env: StatusEnv) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:

        async def settled() -> dict[str, Any] | None:
            # Complete means every contact is terminal (dispatch events); a call's own end (its duration,
            # on the call-events topic, in no order with them) may be projected a chunk later.
            body: dict[str, Any] = (await http.get(f"/v1/api/batch-calls/{h.batch_id}/status")).json()
            done = [r for r in body["recent_calls"] if r["status"] == "completed"]
            return body if all(r["duration"] is not None for r in done) else None

        flat = await wait_for(settled, within=60)
        assert isinstance(flat, dict)
        nested = (await http.get(f"/v1/api/batch-calls/{h.batch_id}")).json()
    for key in ("waiting", "active", "completed", "failed", "total", "averageCallDuration"):
        assert flat[key] == nested["progress"][key]
    failed = [r for r in flat["recent_calls"] if r["status"] == "failed"]
    assert all(r["failedAt"] and r["error"] for r in failed)
    done = [r for r in flat["recent_calls"] if r["status"] == "completed"]
    assert all(r["duration"] is not None for r in done)


async def test_a_poller_with_the_etag_gets_304_until_the_batch_changes(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:
        for path in (f"/v1/batch-calls/{h.batch_id}", f"/v1/api/batch-calls/{h.batch_id}/status"):

            async def unchanged(path: str = path) -> bool:
                # The batch may still take a call's last event between the two requests: then ask again.
                first = await http.get(path)
                etag = first.headers["etag"]
                assert first.status_code == 200 and etag.startswith('W/"')
                again = await http.get(path, headers={"if-none-match": etag})
                if again.status_code == 200:
                    return False
                assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
                return True

            assert await wait_for(unchanged, within=30)
            stale = await http.get(path, headers={"if-none-match": 'W/"older"'})
            assert stale.status_code == 200 and stale.json()["batchId"] == h.batch_id


async def test_another_workspace_gets_404_not_403(projected: dict[str, Any], status_env: StatusEnv) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.other) as http:
        for path in ("", "/status", "/calls", f"/calls/{h.batch_id}_r1", "/export", "/events"):
            response = await http.get(f"/v1/batch-calls/{h.batch_id}{path}")
            assert response.status_code == 404, path
            assert set(response.json()) == {"error", "message"}
        listed = (await http.get("/v1/batch-calls")).json()
        assert listed["batches"] == []
    async with client(projected["running"], status_env.tenant) as http:
        assert (await http.get("/v1/batch-calls/batch_nope")).status_code == 404
        unauth = await http.get(f"/v1/batch-calls/{h.batch_id}", headers={"x-api-key": "bck_x_y"})
        assert unauth.status_code == 401


async def test_call_pages_cover_every_row_once(projected: dict[str, Any], status_env: StatusEnv) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:
        seen: list[str] = []
        page = 1
        while True:
            body = (
                await http.get(f"/v1/batch-calls/{h.batch_id}/calls", params={"page": page, "limit": 50})
            ).json()
            seen.extend(c["jobId"] for c in body["calls"])
            assert body["pagination"]["total"] == 230
            if not body["pagination"]["hasNext"]:
                break
            page += 1
        assert seen == [f"{h.batch_id}_r{i}" for i in range(1, 231)]
        assert body["pagination"]["totalPages"] == 5 and body["pagination"]["hasPrev"]
        first = body["calls"][0]
        assert set(first) >= {
            "jobId",
            "status",
            "phone_number",
            "startTime",
            "endTime",
            "duration",
            "error",
            "metadata",
        }
        assert set(body["summary"]) >= {"total", "waiting", "active", "completed", "failed"}

        by_status: dict[str, set[str]] = {}
        for status in ("completed", "failed"):
            ids: set[str] = set()
            page = 1
            while True:
                listed = (
                    await http.get(
                        f"/v1/batch-calls/{h.batch_id}/calls",
                        params={"status": status, "page": page, "limit": 20},
                    )
                ).json()
                assert all(c["status"] == status for c in listed["calls"])
                ids.update(c["jobId"] for c in listed["calls"])
                if not listed["pagination"]["hasNext"]:
                    break
                page += 1
            assert len(ids) == listed["pagination"]["total"] == listed["summary"][status]
            by_status[status] = ids
        assert len(by_status["completed"] | by_status["failed"]) == 230
        assert all(c["error"] for c in (await http.get(
            f"/v1/batch-calls/{h.batch_id}/calls", params={"status": "failed", "limit": 100}
        )).json()["calls"])  # fmt: skip

        too_many = await http.get(f"/v1/batch-calls/{h.batch_id}/calls", params={"limit": 101})
        assert too_many.status_code == 400 and set(too_many.json()) == {"error", "message"}
        bad = await http.get(f"/v1/batch-calls/{h.batch_id}/calls", params={"status": "bogus"})
        assert bad.status_code == 400


async def test_a_sealed_list_page_holds_exactly_its_buckets_versions(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    """Filled buckets of terminal lists are sealed as they fill, from the projector's memory; whatever order
    the chunks came in, a sealed page lists the versions its bucket holds, in position order."""
    h: History = projected["history"]
    mongo = make_client(status_env.infra, "test-status-pages")
    db = database(mongo, status_env.infra)
    try:
        pages = [p async for p in db[PAGES].find({"_id": {"$regex": f"^{h.batch_id}:"}})]
        assert pages, "230 contacts fill at least the first bucket of the completed or the failed list"
        for page in pages:
            versions = sorted(
                [d async for d in db[CALLS].find({"list_key": page["_id"]})], key=lambda d: d["pos"]
            )
            sealed = page_members(page)
            assert [(m["_id"], m["pos"]) for m in sealed] == [(d["_id"], d["pos"]) for d in versions]
            assert [listing_from_doc(m["l"]) for m in sealed] == [
                call_from_doc(d).listing() for d in versions
            ]
            assert len(sealed) == 100
    finally:
        await mongo.close()


async def test_one_call_shows_its_attempt_history(projected: dict[str, Any], status_env: StatusEnv) -> None:
    h: History = projected["history"]
    retried = next(m.contact_id for m in h.messages if m.type == "retry.scheduled")  # type: ignore[attr-defined]
    async with client(projected["running"], status_env.tenant) as http:
        body = (await http.get(f"/v1/batch-calls/{h.batch_id}/calls/{retried}")).json()
    assert body["jobId"] == retried and len(body["history"]) >= 2
    first = body["history"][0]
    assert first["attempt"] == 1 and first["outcome"] in ("busy", "no_answer", "unreachable", "system_error")
    assert first["error"] and first["providerCode"]
    assert body["metadata"]["e.mail"].endswith("@example.com")


async def test_export_streams_every_contact_with_formulas_neutralised(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:
        response = await http.get(f"/v1/batch-calls/{h.batch_id}/export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["jobId"] for r in rows] == [f"{h.batch_id}_r{i}" for i in range(1, 231)]
    assert {"outcome", "attempts", "duration", "billable", "first_name", "e.mail", "$weird"} <= set(rows[0])
    assert all(r["$weird"] == "'=1+2" for r in rows)
    assert all(r["phone_number"].startswith("'+") or r["phone_number"] == "12ab" for r in rows)


async def test_live_stream_is_numbered_and_resumable(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:
        events = [e async for e in _sse(http, f"/v1/batch-calls/{h.batch_id}/events", "0")]
        ids = [int(i) for i, _, _ in events if i is not None]
        assert ids == list(range(1, len(ids) + 1))
        kinds = {k for _, k, _ in events}
        assert {"call", "progress", "end"} <= kinds
        assert kinds & {"batch.completed", "batch.failed"}
        middle = ids[len(ids) // 2]
        resumed = [e async for e in _sse(http, f"/v1/batch-calls/{h.batch_id}/events", str(middle))]
        assert [int(i) for i, _, _ in resumed if i is not None] == ids[middle:]


async def test_usage_adds_up_the_billable_attempts(projected: dict[str, Any], status_env: StatusEnv) -> None:
    h: History = projected["history"]
    async with client(projected["running"], status_env.tenant) as http:
        usage = (await http.get("/v1/usage")).json()
        batch = (await http.get(f"/v1/batch-calls/{h.batch_id}")).json()
        bad = await http.get("/v1/usage", params={"from": "2026-13-01"})
    line = next(b for b in usage["batches"] if b["batchId"] == h.batch_id)
    assert line["billableAttempts"] == batch["billableAttempts"] > 0
    assert line["billableMinutes"] == batch["billableMinutes"]
    assert sum(p["billableAttempts"] for p in usage["periods"]) == usage["totals"]["billableAttempts"]
    assert bad.status_code == 400


async def test_webhooks_are_signed_delivered_and_logged(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    h: History = projected["history"]
    receiver: Receiver = projected["receiver"]
    hook = projected["hook"]
    assert hook["secret"].startswith("whsec_")

    async def batch_completed_both() -> bool:
        paths = {p for p, _, body in receiver.received if json.loads(body)["event"] == "batch.completed"}
        return paths == {"/workspace", "/batch"}

    await wait_for(batch_completed_both, within=120)
    now = int(time.time())
    workspace = [(hdr, body) for p, hdr, body in receiver.received if p == "/workspace"]
    for headers, body in workspace:
        assert verify(hook["secret"], headers["x-batchcalls-signature"], body, now)
        assert headers["x-trillet-signature"] == headers["x-batchcalls-signature"]
    payloads = [json.loads(body) for _, body in workspace]
    assert {"id", "event", "createdAt", "data"} <= set(payloads[0])
    assert set(payloads[0]["data"]) >= {"callId", "batchId", "agentId", "duration", "status"}
    ids = [p["id"] for p in payloads]
    assert len(ids) == len(set(ids))
    completed = [p for p in payloads if p["event"] == "batch.completed"]
    assert completed[0]["data"]["completed"] + completed[0]["data"]["failed"] == 230
    async with client(projected["running"], status_env.tenant) as http:
        log = (await http.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 5})).json()
        assert len(log["deliveries"]) == 5 and all(d["delivered"] for d in log["deliveries"])
        listed = (await http.get("/v1/webhooks")).json()
        assert [w["id"] for w in listed["webhooks"]] == [hook["id"]] and "secret" not in listed["webhooks"][0]
        batch_log = (await http.get(f"/v1/webhooks/{h.batch_id}/deliveries")).json()
        assert batch_log["deliveries"]


async def test_replay_into_empty_read_models_gives_identical_documents(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    """Drop the read models, replay every topic from the start (a new consumer group), compare."""
    h: History = projected["history"]
    mongo = make_client(status_env.infra, "test-status-replay")
    read_models = MongoReadModels(database(mongo, status_env.infra), now_ms=lambda: int(time.time() * 1000))
    try:
        before_batch = await read_models.shown_batch(h.batch_id)
        before_calls = await read_models.calls_by_rows(h.batch_id, 1, 230)
        assert before_batch is not None and len(before_calls) == 230
        await projected["running"].stop()
        await read_models.drop()
        assert await read_models.load_batch(h.batch_id) is None
        replay = await status_env.start("status-replay", deliver_webhooks=False)
        try:
            async with client(replay, status_env.tenant) as http:

                async def complete() -> bool:
                    response = await http.get(f"/v1/batch-calls/{h.batch_id}")
                    return response.status_code == 200 and bool(response.json()["isComplete"])

                await wait_for(complete, within=120)

                async def replayed() -> bool:
                    # Complete comes from the contacts' terminal events; the calls' own ends travel on
                    # another topic and may land a chunk later: wait for the documents, then compare them.
                    calls = await read_models.calls_by_rows(h.batch_id, 1, 230)
                    return [c.view for c in calls] == [c.view for c in before_calls]

                with contextlib.suppress(AssertionError):  # the comparison below says what differs
                    await wait_for(replayed, within=60)
        finally:
            await replay.stop()
        after_batch = await read_models.shown_batch(h.batch_id)
        after_calls = await read_models.calls_by_rows(h.batch_id, 1, 230)
        assert after_batch is not None
        assert [c.view for c in after_calls] == [c.view for c in before_calls]
        strip = {"feed_seq": 0}
        from dataclasses import replace

        assert replace(after_batch.view, **strip) == replace(before_batch.view, **strip)  # type: ignore[arg-type]
    finally:
        await mongo.close()


async def test_read_models_of_another_layout_are_dropped_and_replayed_from_the_start(
    projected: dict[str, Any], status_env: StatusEnv
) -> None:
    """A projector that finds read models of another layout drops them and reads every topic from its
    beginning, though its consumer group committed past all of it, queues no webhook for that history, and
    then records the layout."""
    h: History = projected["history"]
    mongo = make_client(status_env.infra, "test-status-layout")
    db = database(mongo, status_env.infra)
    read_models = MongoReadModels(db, now_ms=lambda: int(time.time() * 1000))
    try:
        before_calls = await wait_for(lambda: _all_calls(read_models, h.batch_id), within=60)
        await projected["running"].stop()
        await db[META].replace_one({"_id": "layout"}, {"_id": "layout", "version": 1}, upsert=True)
        old = {"_id": "old-layout", "contact_id": "x", "batch_id": h.batch_id, "row_bucket": 0}
        await db[CALLS].insert_one(old)
        await db[OUTBOX].delete_many({})  # what the earlier replay test queued, so a re-queue would show
        began = int(time.time() * 1000)
        restarted = await status_env.start("status-main", deliver_webhooks=False)
        try:

            async def replayed() -> bool:
                calls = await read_models.calls_by_rows(h.batch_id, 1, 230)
                return [c.view for c in calls] == before_calls

            await wait_for(replayed, within=120)
            assert await db[CALLS].find_one({"_id": "old-layout"}) is None
            meta = await db[META].find_one({"_id": "layout"})
            assert meta is not None and meta["version"] == LAYOUT and not meta.get("replaying")
            assert meta["notices_from_ms"] >= began
            assert await db[OUTBOX].count_documents({"created_at": {"$lt": began}}) == 0
        finally:
            await restarted.stop()
    finally:
        await mongo.close()


async def _all_calls(read_models: MongoReadModels, batch_id: str) -> list[Any] | None:
    calls = await read_models.calls_by_rows(batch_id, 1, 230)
    return [c.view for c in calls] if len(calls) == 230 else None
