"""Sealed list pages: a filled bucket of a terminal status list, its hundred members in one document.

A bucket's positions are taken in order and a version never changes, so once a bucket's last position is
written its members are fixed; afterwards only vacancies come, and readers apply those from the
vacated-position fragments exactly as for a bucket read version by version. FerretDB's cost is per document
and per field (ADR 0056): the hundred versions of a bucket take ~15 ms to read, one document ~2-5 ms. A
member is what the list shows of its call (`CallListing`), so a deep `?status=failed` page rebuilds no call
document either.

Only terminal lists are sealed: members of `waiting` and `active` move on within seconds, and a bucket most
of whose members already left when it filled (a `failed` list holds failures that are retried) is not
worth a write. Unsealed buckets are read version by version, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import orjson

from shared.mongo import Document
from status.adapters.documents import listing_to_doc
from status.domain.calls import CallView
from status.ports import LIST_BUCKET

SEALED_LISTS = frozenset({"completed", "failed", "cancelled"})
SEAL_MIN_LIVE = LIST_BUCKET // 2
"""A filled bucket is sealed only while at least this many of its members are still in the list."""
OPEN_BUCKETS = 64
"""Buckets whose versions are remembered until they fill (a bucket forgotten, or begun before a restart, is
read back from the store when it fills). A few per batch being projected: bounded memory, ~100 kB each."""


def page_member(version_id: str, pos: int, view: CallView) -> Document:
    """One member of a sealed page: which version holds the position, and what the list shows of it."""
    return {"_id": version_id, "pos": pos, "l": listing_to_doc(view.listing())}


class OpenBuckets:
    """The members written into the not yet filled buckets of terminal lists, in this process."""

    def __init__(self, capacity: int = OPEN_BUCKETS) -> None:
        self._capacity = capacity
        self._members: OrderedDict[str, dict[int, Document]] = OrderedDict()

    def add(self, key: str, version_id: str, pos: int, view: CallView) -> bool:
        """Remembers the member a version just written adds to bucket `key` of its list (only in a
        terminal list: its listing is built only then); whether it took the bucket's last position."""
        if view.status.value not in SEALED_LISTS:
            return False
        members = self._members.get(key)
        if members is None:
            members = self._members[key] = {}
            while len(self._members) > self._capacity:
                self._members.popitem(last=False)
        members[pos] = page_member(version_id, pos, view)
        return pos % LIST_BUCKET == 0

    def take(self, key: str) -> list[Document] | None:
        """The filled bucket's members, if this process saw all of them written; forgets the bucket."""
        members = self._members.pop(key, None)
        if members is None or len(members) != LIST_BUCKET:
            return None
        return list(members.values())


def sealed_page(key: str, members: Iterable[Document]) -> Document:
    """The stored form of a sealed bucket: its members in position order, packed."""
    ordered = sorted(members, key=lambda m: int(m["pos"]))
    return {"_id": key, "n": len(ordered), "b": orjson.dumps(ordered)}


def page_members(page: Document) -> list[Document]:
    """The members of a sealed bucket (`_id` of the version, `pos`, and the listing `l`)."""
    members: list[Document] = orjson.loads(page["b"])
    return members
