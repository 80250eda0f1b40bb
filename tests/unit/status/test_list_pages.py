"""Sealed list pages: which buckets are remembered and sealed, and their members read back as written."""

from __future__ import annotations

import random

from shared.outcomes import Outcome
from status.adapters.documents import listing_from_doc
from status.adapters.list_pages import OpenBuckets, page_member, page_members, sealed_page
from status.domain.calls import CallView, Finish
from status.ports import LIST_BUCKET, StatusLists
from tests.unit.status.fakes import MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import chunks, history

_VIEWS = {
    "waiting": CallView("b_r1", "ws", "b"),
    "completed": CallView("b_r1", "ws", "b", finish=Finish(1, "e1", Outcome.COMPLETED, 1)),
    "failed": CallView("b_r1", "ws", "b", finish=Finish(1, "e1", Outcome.BUSY, 3)),
    "cancelled": CallView("b_r1", "ws", "b", cancelled_at=1),
}


def _add(open_buckets: OpenBuckets, key: str, pos: int) -> bool:
    """A version of a call in the status the key names, at `pos`."""
    view = _VIEWS[key.split(":")[1]]
    assert view.status.value == key.split(":")[1]
    return open_buckets.add(key, f"c{pos}~1", pos, view)


def test_the_version_taking_a_buckets_last_position_fills_it() -> None:
    open_buckets = OpenBuckets()
    filled = [_add(open_buckets, "b:failed:0", pos) for pos in range(1, LIST_BUCKET + 1)]
    assert filled == [False] * (LIST_BUCKET - 1) + [True]
    taken = open_buckets.take("b:failed:0")
    assert taken is not None and sorted(int(d["pos"]) for d in taken) == list(range(1, LIST_BUCKET + 1))
    assert open_buckets.take("b:failed:0") is None  # forgotten once taken


def test_lists_whose_members_move_on_are_not_remembered() -> None:
    open_buckets = OpenBuckets()
    assert not any(_add(open_buckets, "b:waiting:0", p) for p in range(1, LIST_BUCKET))
    assert open_buckets.take("b:waiting:0") is None


def test_a_bucket_forgotten_or_begun_elsewhere_is_not_taken_from_memory() -> None:
    open_buckets = OpenBuckets(capacity=2)
    for pos in range(2, LIST_BUCKET + 1):  # position 1 was written before a restart
        _add(open_buckets, "b:completed:0", pos)
    assert open_buckets.take("b:completed:0") is None
    for key in ("b:completed:1", "b:failed:0", "b:cancelled:0"):
        start = LIST_BUCKET + 1 if key.endswith(":1") else 1
        for pos in range(start, start + LIST_BUCKET):
            _add(open_buckets, key, pos)
    assert open_buckets.take("b:completed:1") is None  # evicted by the two buckets begun after it
    assert open_buckets.take("b:cancelled:0") is not None


def test_filled_and_live_counts_follow_the_positions() -> None:
    lists = StatusLists()
    for _ in range(LIST_BUCKET - 1):
        lists.enter("failed")
    assert not lists.filled("failed", 0)
    pos = lists.enter("failed")
    lists.leave("failed", pos)
    assert lists.filled("failed", 0) and not lists.filled("failed", 1)
    assert lists.live_in("failed", 0) == LIST_BUCKET - 1 and lists.live_in("failed", 7) == 0


async def test_a_sealed_page_reads_back_as_the_listings_of_its_members() -> None:
    from status.handlers import Projector

    store = MemoryReadModels()
    projector = Projector(store, StaticRoutes(), now_ms=lambda: 0)
    for chunk in chunks(history(7, rows=40).records(), random.Random(7)):
        await projector.project(chunk)
    # One list's members: positions are per status list.
    calls = [c for c in store.calls.values() if c.view.status.value == "failed"]
    assert len(calls) > 3
    members = [page_member(f"{c.view.contact_id}~{c.version}", c.pos, c.view) for c in calls]
    random.Random(3).shuffle(members)
    read = page_members(sealed_page("k", members))
    assert [m["pos"] for m in read] == sorted(c.pos for c in calls)
    by_id = {f"{c.view.contact_id}~{c.version}": c for c in calls}
    assert [listing_from_doc(m["l"]) for m in read] == [by_id[m["_id"]].view.listing() for m in read]
