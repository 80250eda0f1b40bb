"""Sealed list pages: a filled bucket of a terminal status list, its hundred call versions in one document.

A bucket's positions are taken in order and a version never changes, so once a bucket's last position is
written its members are fixed; afterwards only vacancies come, and readers apply those from the
vacated-position fragments exactly as for a bucket read version by version. FerretDB's cost is per document
and per field (ADR 0056): the hundred versions of a bucket take ~15 ms to read, the same hundred packed in
one value ~5-7 ms, so a deep `?status=failed` page reads sealed buckets.

Only terminal lists are sealed: members of `waiting` and `active` move on within seconds, and a bucket most
of whose members already left when it filled (a `failed` list holds failures that are retried) is not
worth a write. Unsealed buckets are read version by version, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import orjson

from shared.mongo import Document
from status.ports import LIST_BUCKET

SEALED_LISTS = frozenset({"completed", "failed", "cancelled"})
SEAL_MIN_LIVE = LIST_BUCKET // 2
"""A filled bucket is sealed only while at least this many of its members are still in the list."""
OPEN_BUCKETS = 64
"""Buckets whose versions are remembered until they fill (a bucket forgotten, or begun before a restart, is
read back from the store when it fills). A few per batch being projected: bounded memory, ~100 kB each."""


class OpenBuckets:
    """The versions written into the not yet filled buckets of terminal lists, in this process."""

    def __init__(self, capacity: int = OPEN_BUCKETS) -> None:
        self._capacity = capacity
        self._members: OrderedDict[str, dict[int, Document]] = OrderedDict()

    def add(self, status: str, doc: Document) -> bool:
        """Remembers a version just written; whether it took the last position of its bucket."""
        if status not in SEALED_LISTS:
            return False
        key = doc["list_key"]
        members = self._members.get(key)
        if members is None:
            members = self._members[key] = {}
            while len(self._members) > self._capacity:
                self._members.popitem(last=False)
        pos = int(doc["pos"])
        members[pos] = doc
        return pos % LIST_BUCKET == 0

    def take(self, key: str) -> list[Document] | None:
        """The filled bucket's versions, if this process saw all of them written; forgets the bucket."""
        members = self._members.pop(key, None)
        if members is None or len(members) != LIST_BUCKET:
            return None
        return list(members.values())


def sealed_page(key: str, versions: Iterable[Document]) -> Document:
    """The stored form of a sealed bucket: its versions as stored, in position order, packed (their packed
    slots embedded as they are, not parsed and dumped again)."""
    members = [
        {**{k: v for k, v in d.items() if k != "state"}, "state": orjson.Fragment(d["state"])}
        for d in sorted(versions, key=lambda d: int(d["pos"]))
    ]
    return {"_id": key, "n": len(members), "b": orjson.dumps(members)}


def page_versions(page: Document) -> list[Document]:
    """The versions of a sealed bucket, each with its slots already unpacked (which `call_from_doc` reads
    like a stored version)."""
    versions: list[Document] = orjson.loads(page["b"])
    for version in versions:
        version.update(version.pop("state"))
    return versions
