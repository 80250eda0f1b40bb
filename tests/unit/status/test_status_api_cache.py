"""The polling bodies rendered once per batch document, and the API's batch cache fed by the projector."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest

from status.domain.batches import BatchView, Counts, new_batch
from status.entrypoints import schemas
from status.entrypoints.api import BatchCache
from status.entrypoints.status_bodies import StatusBodies, respond
from status.ports import StatusLists, StoredBatch

pytestmark = pytest.mark.unit


def _batch(completed: int = 0) -> BatchView:
    return replace(new_batch("batch_1", "ws_1"), counts=Counts(waiting=10 - completed, completed=completed))


def test_a_poll_answers_what_the_schema_builds_stamped_with_its_own_time() -> None:
    view = _batch(3)
    bodies = StatusBodies()
    for rendered, build in (
        (bodies.nested(view), schemas.batch_status),
        (bodies.flat(view), schemas.flat_status),
    ):
        response = respond(rendered, None, 1_234)
        assert response.status_code == 200
        assert orjson.loads(response.body) == build(view, 1_234).model_dump(mode="json")
        assert response.headers["etag"] == rendered.etag


def test_the_etag_changes_with_the_batch_not_with_the_clock() -> None:
    bodies = StatusBodies()
    first = bodies.nested(_batch(3))
    assert bodies.nested(_batch(3)).etag == first.etag  # a new document with the same state
    assert bodies.nested(_batch(4)).etag != first.etag
    assert bodies.flat(_batch(3)).etag != first.etag
    assert respond(first, None, 1).body != respond(first, None, 2).body


def test_if_none_match_gets_a_bodiless_304_until_the_batch_changes() -> None:
    bodies = StatusBodies()
    etag = bodies.nested(_batch(3)).etag
    unchanged = respond(bodies.nested(_batch(3)), f'"other", {etag}', 5)
    assert (unchanged.status_code, unchanged.body, unchanged.headers["etag"]) == (304, b"", etag)
    assert respond(bodies.nested(_batch(3)), etag.removeprefix("W/"), 5).status_code == 304
    assert respond(bodies.nested(_batch(4)), etag, 5).status_code == 200


class _SlowReads:
    """`shown_batch` that answers what the store held when the read began, once released."""

    def __init__(self, stored: StoredBatch) -> None:
        self.stored = stored
        self.release = asyncio.Event()
        self.reads = 0

    async def shown_batch(self, batch_id: str) -> StoredBatch | None:
        self.reads += 1
        held = self.stored
        await self.release.wait()
        return held


async def test_the_projector_hands_over_documents_and_a_slower_read_does_not_undo_them() -> None:
    old = StoredBatch(_batch(3), StatusLists())
    new = StoredBatch(_batch(4), StatusLists())
    reads = _SlowReads(old)
    cache = BatchCache(reads, ttl_ms=200)  # type: ignore[arg-type]
    first = asyncio.create_task(cache.get("ws_1", "batch_1"))
    await asyncio.sleep(0)
    cache.put([new])  # written while the read of the older document is on its way
    reads.release.set()
    assert await first is new
    assert await cache.get("ws_1", "batch_1") is new
    assert await cache.get("ws_2", "batch_1") is None  # another workspace's batch stays invisible
    assert reads.reads == 1
