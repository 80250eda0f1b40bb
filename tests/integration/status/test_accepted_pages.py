"""Accepted pages (ADR 0058) against FerretDB: the first `waiting` versions of an upload are stored a page per
row bucket and list bucket, and every reader (a call by id, row pages, the `waiting` list, the export, a
projector with nothing in memory) finds them as if each were a document of its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from shared.events import ContactAccepted
from shared.mongo import database, make_client
from shared.outcomes import PublicCallStatus
from status.adapters.documents import accepted_members
from status.adapters.mongo_read_models import ACCEPTED, CALLS, MongoReadModels
from status.handlers import Projector
from status.ports import Record
from tests.integration.status.conftest import StatusEnv
from tests.unit.status.fakes import MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import History, history

pytestmark = pytest.mark.integration

ROWS = 450


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def read_models(status_env: StatusEnv) -> AsyncIterator[MongoReadModels]:
    client = make_client(status_env.infra, "test-accepted-pages")
    db = database(client, status_env.infra).client[f"{status_env.infra.mongo_db}_acc_{uuid4().hex[:6]}"]
    models = MongoReadModels(db, now_ms=_now_ms)
    await models.ensure_indexes()
    try:
        yield models
    finally:
        await client.drop_database(db.name)
        await client.close()


def _split(h: History) -> tuple[list[Record], list[Record]]:
    """The upload (the batch's acceptance and every accepted row) and everything after it."""
    records = h.records()
    last_accepted = max(i for i, r in enumerate(records) if isinstance(r.message, ContactAccepted))
    return records[: last_accepted + 1], records[last_accepted + 1 :]


async def _memory(records: list[Record]) -> MemoryReadModels:
    store = MemoryReadModels()
    await Projector(store, StaticRoutes(), now_ms=_now_ms).project(records)
    return store


async def test_an_upload_is_stored_in_pages_and_read_back_as_versions(read_models: MongoReadModels) -> None:
    h = history(58, rows=ROWS, batch_id=f"batch_acc_{uuid4().hex[:8]}")
    upload, rest = _split(h)
    await Projector(read_models, StaticRoutes(), now_ms=_now_ms).project(upload)
    expected = await _memory(upload)
    waiting = {c: s for c, s in expected.calls.items() if s.view.status is PublicCallStatus.WAITING}
    assert len(waiting) > ROWS // 2

    db = read_models._db
    pages = [d async for d in db[ACCEPTED].find({"batch_id": h.batch_id})]
    paged = {m["contact_id"] for p in pages for m in accepted_members(p)}
    own = {d["contact_id"] async for d in db[CALLS].find({"batch_id": h.batch_id})}
    assert paged <= set(waiting), "only first waiting versions are paged"
    assert not own & paged, "a paged version was written as a document of its own too"
    # The few left out share their row bucket and list bucket with fewer than a page's worth.
    assert set(waiting) - paged <= own and len(set(waiting) - paged) < len(waiting) // 10
    assert len(pages) < len(paged) // 20

    # A call by id, the batch's rows, the waiting list: what the memory store holds.
    for contact_id in list(waiting)[:: len(waiting) // 7]:
        stored = await read_models.latest_call(contact_id)
        assert stored is not None and stored == waiting[contact_id]
    assert await read_models.latest_call(f"{h.batch_id}_r{ROWS + 5}") is None
    rows = await read_models.calls_by_rows(h.batch_id, 1, ROWS)
    assert [c.view for c in rows] == sorted(
        (s.view for s in expected.calls.values()), key=lambda v: v.row_number or 0
    )
    shown = await read_models.shown_batch(h.batch_id)
    assert shown is not None
    listed = await read_models.calls_in_list(shown, "waiting", 0, ROWS)
    want = sorted(waiting.values(), key=lambda s: s.pos)
    assert [c.row_number for c in listed] == [s.view.row_number for s in want]

    # The upload written again (a crash before its commit) adds nothing.
    before = await db[ACCEPTED].count_documents({}), await db[CALLS].count_documents({})
    await Projector(read_models, StaticRoutes(), now_ms=_now_ms).project(upload)
    assert (await db[ACCEPTED].count_documents({}), await db[CALLS].count_documents({})) == before

    # The rest, each chunk by a projector that remembers nothing: it reads the paged versions back.
    step = max(1, len(rest) // 5)
    for start in range(0, len(rest), step):
        await Projector(read_models, StaticRoutes(), now_ms=_now_ms).project(rest[start : start + step])
    final = await _memory(upload + rest)
    got = await read_models.calls_by_rows(h.batch_id, 1, ROWS)
    assert [c.view for c in got] == sorted(
        (s.view for s in final.calls.values()), key=lambda v: v.row_number or 0
    )
    record = await read_models.load_batch(h.batch_id)
    assert record is not None and record.view.counts == final.ledger[h.batch_id].view.counts
    exported = [c.view async for c in read_models.all_calls(record)]
    assert exported == [c.view for c in got]
    assert await read_models.calls_in_list(record, "waiting", 0, ROWS) == []
