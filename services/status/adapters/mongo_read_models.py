"""The status read models in MongoDB (FerretDB locally): the projector's writes and the API's reads.

FerretDB 1.24 on SQLite rewrites by scanning: an update or delete of one document by `_id` costs time in
proportion to the collection's size (measured: 16 ms at 1,000 documents, 45 ms at 10,000), while inserts
and equality reads stay flat. So the large collections are insert-only (ADR 0041): each change of a call is
a new version document, each feed entry its own document. Only the batch documents (one per batch) are
replaced. Every hot read is an equality lookup FerretDB pushes down to SQL.

Each batch has two documents of the same shape (ADR 0043): the projector's record in `status_batch_ledger`,
written before a chunk's call versions (it holds the Kafka offsets that make a replay safe), and the
document readers see in `status_batches`, written after them — so no reader sees a batch complete, or
counting a call as finished, before that call's document says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import orjson
from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import MAX_BULK_UPDATES, Document, few_at_a_time, insert_new
from shared.outcomes import PublicCallStatus
from status.adapters.documents import (
    ACCEPTED_PAGE_MIN,
    LAYOUT,
    ROW_BUCKET,
    accepted_members,
    accepted_page,
    batch_from_doc,
    batch_to_doc,
    call_from_doc,
    call_to_doc,
    list_key,
    listing_from_doc,
    row_key,
)
from status.adapters.list_pages import (
    SEAL_MIN_LIVE,
    SEALED_LISTS,
    OpenBuckets,
    page_member,
    page_members,
    sealed_page,
)
from status.domain.calls import CallListing, row_number_of
from status.ports import (
    FEED_PAGE,
    LIST_BUCKET,
    YIELD_EVERY,
    Changes,
    FeedEntry,
    OutboxItem,
    StoredBatch,
    StoredCall,
)

BATCHES = "status_batches"
LEDGER = "status_batch_ledger"
CALLS = "status_calls"
ACCEPTED = "status_accepted_pages"
VACATED = "status_call_vacated"
PAGES = "status_list_pages"
FEED = "status_feed"
OUTBOX = "status_webhook_outbox"
META = "status_meta"
READ_MODELS = (BATCHES, LEDGER, CALLS, ACCEPTED, VACATED, PAGES, FEED)
"""The collections a rebuild drops and replays (the webhook outbox and settings are not read models)."""

_WRITE_CHUNK = 500
_BUCKET_READ_MIN = 4
"""Contacts wanted from one row bucket before the bucket is read whole (its hundred calls' versions) rather
than each of them by `contact_id`: one query's cost on FerretDB is about that of a few dozen documents."""


def _feed_fragments(entries: Sequence[FeedEntry]) -> list[Document]:
    """One document per batch and feed page per write: a chunk's thousand entries are a few inserts."""
    groups: dict[tuple[str, int], list[FeedEntry]] = {}
    for entry in entries:
        groups.setdefault((entry.batch_id, (entry.seq - 1) // FEED_PAGE), []).append(entry)
    return [
        {
            "_id": f"{batch_id}:{page}:{group[0].seq}",
            "batch_id": batch_id,
            "workspace_id": group[0].workspace_id,
            "page": page,
            # One string, not nested documents: FerretDB's insert cost grows with the number of fields.
            "entries": orjson.dumps([{"seq": e.seq, "kind": e.kind, "data": e.data} for e in group]).decode(),
        }
        for (batch_id, page), group in groups.items()
    ]


def _vacated_fragments(changes: Changes) -> list[Document]:
    """The list positions the new call versions leave, one document per batch, status and bucket."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for write in changes.calls:
        if write.previous is None:
            continue
        status, pos = write.previous.view.status.value, write.previous.pos
        groups.setdefault((write.view.batch_id, status, (pos - 1) // LIST_BUCKET), []).append(pos)
    # A position is left once, so the smallest one names the fragment uniquely (a rewrite after a crash
    # produces the same id and is skipped).
    return [
        {
            "_id": f"{list_key(batch_id, status, bucket)}:{min(positions)}",
            "batch_id": batch_id,
            "list_key": list_key(batch_id, status, bucket),
            "positions": sorted(positions),
        }
        for (batch_id, status, bucket), positions in groups.items()
    ]


def _accepted_pages(changes: Changes, docs: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    """The chunk's versions as accepted pages (first versions in `waiting`, grouped by row bucket and list
    bucket, where enough share both) and the documents of the rest, each in chunk order."""
    groups: dict[tuple[str, str], list[Document]] = {}
    for write, doc in zip(changes.calls, docs, strict=True):
        if write.version == 1 and write.view.status is PublicCallStatus.WAITING:
            groups.setdefault((doc["row_key"], doc["list_key"]), []).append(doc)
    paged = {id(doc) for group in groups.values() if len(group) >= ACCEPTED_PAGE_MIN for doc in group}
    pages = [accepted_page(group) for group in groups.values() if len(group) >= ACCEPTED_PAGE_MIN]
    return pages, [doc for doc in docs if id(doc) not in paged]


async def _found(collection: AsyncCollection[Document], query: Document) -> list[Document]:
    return [d async for d in collection.find(query)]


def _outbox_to_doc(item: OutboxItem) -> Document:
    return {
        "_id": item.item_id,
        "endpoint_id": item.endpoint_id,
        "workspace_id": item.workspace_id,
        "url": item.url,
        "notice_id": item.notice_id,
        "event": item.event,
        "created_at": item.created_at,
        "body": item.body,
    }


async def _insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> None:
    """Inserts documents expected to be new, a few hundred per command; one that exists already (a chunk
    written again after a crash) is kept as it is."""
    for start in range(0, len(docs), _WRITE_CHUNK):
        await insert_new(collection, docs[start : start + _WRITE_CHUNK])


async def _replace(collection: AsyncCollection[Document], batches: Sequence[StoredBatch]) -> None:
    docs = [batch_to_doc(b) for b in batches]
    for start in range(0, len(docs), MAX_BULK_UPDATES):
        await collection.bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs[start : start + MAX_BULK_UPDATES]],
            ordered=True,
        )


def _latest(docs: Sequence[Document]) -> dict[str, Document]:
    """The highest version of each contact among `docs`."""
    latest: dict[str, Document] = {}
    for doc in docs:
        have = latest.get(doc["contact_id"])
        if have is None or doc["v"] > have["v"]:
            latest[doc["contact_id"]] = doc
    return latest


class MongoReadModels:
    """`ReadModels` for the projector, plus the queries the API makes."""

    def __init__(self, db: AsyncDatabase[Document], *, now_ms: Callable[[], int]) -> None:
        self._db = db
        self._batches = db[BATCHES]
        self._ledger = db[LEDGER]
        self._calls = db[CALLS]
        self._accepted = db[ACCEPTED]
        self._vacated = db[VACATED]
        self._pages = db[PAGES]
        self._open_buckets = OpenBuckets()
        self._feed = db[FEED]
        self._outbox = db[OUTBOX]
        self._now_ms = now_ms
        self._shown_listeners: list[Callable[[Sequence[StoredBatch]], None]] = []

    def on_shown(self, listener: Callable[[Sequence[StoredBatch]], None]) -> None:
        """Calls `listener` with the batch documents readers see, each time they have been written."""
        self._shown_listeners.append(listener)

    async def ensure_indexes(self) -> None:
        await self._calls.create_index([("contact_id", ASCENDING)])
        await self._calls.create_index([("batch_id", ASCENDING)])
        await self._calls.create_index([("row_key", ASCENDING)])
        await self._calls.create_index([("list_key", ASCENDING)])
        for field in ("batch_id", "row_key", "list_key"):
            await self._accepted.create_index([(field, ASCENDING)])
        await self._vacated.create_index([("list_key", ASCENDING)])
        await self._feed.create_index([("batch_id", ASCENDING), ("page", ASCENDING)])
        await self._batches.create_index([("workspace_id", ASCENDING)])

    async def drop(self) -> None:
        """Drops the read models (not the webhook outbox or settings), for a rebuild from the topics."""
        for name in READ_MODELS:
            await self._db.drop_collection(name)

    async def prepare_layout(self, now_ms: int) -> tuple[bool, int]:
        """Whether the read models must be replayed from the topics' start, and since when changes may be
        notified by webhook (the replay's start: what happened before was notified when it happened).

        They must when they hold documents of another layout, or of a replay that had not committed its
        first chunk; this drops them and records that a replay began. Empty read models take this layout
        at once. After the replay's first commit, `layout_replayed` records the layout; the notice time
        stays, so a projector restarted in the middle of the replay does not notify history either."""
        meta = await self._db[META].find_one({"_id": "layout"})
        notices_from = int(meta.get("notices_from_ms", 0)) if meta is not None else 0
        if meta is not None and meta.get("version") == LAYOUT:
            return False, notices_from
        if (
            meta is None
            and await self._ledger.find_one({}) is None
            and await self._batches.find_one({}) is None
        ):
            await self._write_meta({"version": LAYOUT})
            return False, 0
        if meta is None or not meta.get("replaying"):
            notices_from = now_ms
        await self.drop()
        await self._write_meta(
            {
                "version": meta.get("version") if meta else None,
                "replaying": True,
                "notices_from_ms": notices_from,
            }
        )
        return True, notices_from

    async def layout_replayed(self) -> None:
        """Records that the read models have this layout (after the replay's first chunk is committed: a
        crash before it finds the replay unfinished and begins it again)."""
        meta = await self._db[META].find_one({"_id": "layout"}) or {}
        await self._write_meta({"version": LAYOUT, "notices_from_ms": int(meta.get("notices_from_ms", 0))})

    async def _write_meta(self, fields: Document) -> None:
        await self._db[META].replace_one({"_id": "layout"}, {"_id": "layout", **fields}, upsert=True)

    # --- ReadModels (the projector) --------------------------------------------------------------------

    async def load_batch(self, batch_id: str) -> StoredBatch | None:
        # A batch projected before the ledger existed has only its shown document, which was then the record.
        doc = await self._ledger.find_one({"_id": batch_id})
        if doc is None:
            doc = await self._batches.find_one({"_id": batch_id})
        return batch_from_doc(doc) if doc else None

    async def load_calls(self, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        # One equality lookup each: `$in` is not pushed down by FerretDB and would scan the collection.
        looked_up = await few_at_a_time(self.latest_call, contact_ids)
        return {c: stored for c, stored in zip(contact_ids, looked_up, strict=True) if stored is not None}

    async def load_calls_near(self, batch_id: str, contact_ids: Sequence[str]) -> Mapping[str, StoredCall]:
        # A row bucket that holds several of the wanted contacts is read whole (an equality query on
        # `row_key`); the others are looked up one by one.
        buckets: dict[int, list[str]] = {}
        single: list[str] = []
        for contact_id in contact_ids:
            row = row_number_of(contact_id)
            if row is None or row < 1:
                single.append(contact_id)
            else:
                buckets.setdefault((row - 1) // ROW_BUCKET, []).append(contact_id)
        whole = [bucket for bucket, wanted in buckets.items() if len(wanted) >= _BUCKET_READ_MIN]
        for wanted in buckets.values():
            if len(wanted) < _BUCKET_READ_MIN:
                single.extend(wanted)
        read = await few_at_a_time(lambda bucket: self._row_bucket(batch_id, bucket), whole)
        docs = [doc for part in read for doc in part]
        found = {c: StoredCall(call_from_doc(d), d["v"], d["pos"]) for c, d in _latest(docs).items()}
        found.update(await self.load_calls(single))
        return found

    async def _row_bucket(self, batch_id: str, bucket: int) -> list[Document]:
        """Every version of the calls in one row bucket of the batch (accepted pages' members too)."""
        return await self._versions({"row_key": row_key(batch_id, bucket)})

    async def _versions(self, query: Document) -> list[Document]:
        """The call versions `query` selects: documents of their own and members of accepted pages."""
        own, pages = await asyncio.gather(_found(self._calls, query), _found(self._accepted, query))
        return own + [member for page in pages for member in accepted_members(page)]

    async def load_batch_calls(self, batch_id: str) -> Mapping[str, StoredCall]:
        # One scan for the whole batch: on FerretDB's SQLite backend a `contact_id` lookup scans the whole
        # collection too, so reading a cold chunk's calls one by one costs a scan per contact (ADR 0043).
        latest = _latest(await self._versions({"batch_id": batch_id}))
        return {c: StoredCall(call_from_doc(d), d["v"], d["pos"]) for c, d in latest.items()}

    async def ledger_horizon(self) -> dict[str, int]:
        """Per Kafka partition, the highest offset any batch record holds: after a restart, the projector's
        first chunk reaches this far, so it holds every event a crash may have left half-written."""
        horizon: dict[str, int] = {}
        async for doc in self._ledger.find({}, {"offsets": 1}):
            for entry in doc.get("offsets") or ():
                partition, offset = entry["p"], int(entry["o"])
                if offset > horizon.get(partition, -1):
                    horizon[partition] = offset
        return horizon

    async def save(self, changes: Changes) -> None:
        if changes.feed:
            await _insert_new(self._feed, _feed_fragments(changes.feed))
        if changes.outbox:
            await _insert_new(self._outbox, [_outbox_to_doc(i) for i in changes.outbox])
        if changes.batches:
            await _replace(self._ledger, changes.batches)
        if changes.calls:
            vacated = _vacated_fragments(changes)
            if vacated:
                await _insert_new(self._vacated, vacated)
            docs: list[Document] = []
            for start in range(0, len(changes.calls), YIELD_EVERY):
                docs.extend(
                    call_to_doc(w.view, w.version, w.pos) for w in changes.calls[start : start + YIELD_EVERY]
                )
                await asyncio.sleep(0)  # a replay's chunk has tens of thousands: the API answers in between
            accepted, own = _accepted_pages(changes, docs)
            if accepted:
                await _insert_new(self._accepted, accepted)
            await _insert_new(self._calls, own)
            pages = await self._sealed_pages(changes, docs)
            if pages:
                await _insert_new(self._pages, pages)
        if changes.shown:
            await _replace(self._batches, changes.shown)
            for listener in self._shown_listeners:
                listener(changes.shown)

    async def _sealed_pages(self, changes: Changes, docs: Sequence[Document]) -> list[Document]:
        """Sealed pages of the terminal-list buckets these versions filled (written after the versions, so
        a sealed page never holds less than the versions read one by one would)."""
        filled = [
            (write, doc["list_key"])
            for write, doc in zip(changes.calls, docs, strict=True)
            if self._open_buckets.add(doc["list_key"], doc["_id"], write.pos, write.view)
        ]
        lists = {b.view.batch_id: b.lists for b in changes.batches}
        pages: list[Document] = []
        for write, key in filled:
            members = self._open_buckets.take(key)
            record = lists.get(write.view.batch_id)
            status, bucket = write.view.status.value, (write.pos - 1) // LIST_BUCKET
            if record is None or record.live_in(status, bucket) < SEAL_MIN_LIVE:
                continue
            if members is None:  # begun before a restart, or forgotten: the store has them all
                members = [
                    page_member(d["_id"], d["pos"], call_from_doc(d))
                    async for d in self._calls.find({"list_key": key})
                ]
            pages.append(sealed_page(key, members))
        return pages

    # --- queries (the API) -----------------------------------------------------------------------------

    async def shown_batch(self, batch_id: str) -> StoredBatch | None:
        """The batch document readers see (never ahead of its call documents)."""
        doc = await self._batches.find_one({"_id": batch_id})
        return batch_from_doc(doc) if doc else None

    async def latest_call(self, contact_id: str) -> StoredCall | None:
        docs = await _found(self._calls, {"contact_id": contact_id})
        if not docs:
            # Only its first version, if any: in an accepted page of its row bucket.
            batch_id, _, _ = contact_id.rpartition("_r")
            row = row_number_of(contact_id)
            if row is None or row < 1:
                return None
            pages = await _found(self._accepted, {"row_key": row_key(batch_id, (row - 1) // ROW_BUCKET)})
            docs = [m for p in pages for m in accepted_members(p) if m["contact_id"] == contact_id]
        if not docs:
            return None
        doc = max(docs, key=lambda d: d["v"])
        return StoredCall(call_from_doc(doc), doc["v"], doc["pos"])

    async def batch(self, workspace_id: str, batch_id: str) -> StoredBatch | None:
        doc = await self._batches.find_one({"_id": batch_id})
        if doc is None or doc.get("workspace_id") != workspace_id:
            return None
        return batch_from_doc(doc)

    async def workspace_batches(self, workspace_id: str) -> list[StoredBatch]:
        """Every batch of the workspace (an equality query; a workspace has hundreds, not millions)."""
        return [batch_from_doc(d) async for d in self._batches.find({"workspace_id": workspace_id})]

    async def calls_by_rows(self, batch_id: str, first_row: int, last_row: int) -> list[StoredCall]:
        """Calls with rows `first_row..last_row` (1-based), through the row buckets that hold them."""
        docs: list[Document] = []
        for bucket in range((first_row - 1) // ROW_BUCKET, (last_row - 1) // ROW_BUCKET + 1):
            docs.extend(await self._row_bucket(batch_id, bucket))
        latest = [StoredCall(call_from_doc(d), d["v"], d["pos"]) for d in _latest(docs).values()]
        return sorted(
            (c for c in latest if first_row <= (c.view.row_number or 0) <= last_row),
            key=lambda c: c.view.row_number or 0,
        )

    async def _list_bucket(self, stored: StoredBatch, status: str, bucket: int) -> list[Document]:
        """The live members of one list bucket, in list order: its vacated positions and, at the same time,
        its sealed page's members when a filled terminal bucket may have one, else its call versions. A
        bucket whose hundred positions are all live has no vacated position to read."""
        key = list_key(stored.view.batch_id, status, bucket)
        query = {"list_key": key}

        async def versions() -> list[Document]:
            # Only `waiting` has accepted pages.
            if status == PublicCallStatus.WAITING.value:
                return await self._versions(query)
            return await _found(self._calls, query)

        async def vacated_positions() -> list[Document]:
            if stored.lists.live_in(status, bucket) >= LIST_BUCKET:
                return []
            return await _found(self._vacated, query)

        docs: list[Document]
        if status in SEALED_LISTS and stored.lists.filled(status, bucket):
            vacated, page = await asyncio.gather(vacated_positions(), self._pages.find_one({"_id": key}))
            docs = page_members(page) if page is not None else await versions()
        else:
            vacated, docs = await asyncio.gather(vacated_positions(), versions())
        gone = {pos for d in vacated for pos in d["positions"]}
        return sorted((d for d in docs if d["pos"] not in gone), key=lambda d: d["pos"])

    async def calls_in_list(
        self, stored: StoredBatch, status: str, skip: int, limit: int
    ) -> list[CallListing]:
        """A page of the batch's calls with `status`, in the order they reached it: the live members of the
        list buckets from the one holding the `skip`-th member on.

        The buckets the page spans by their live counts are read concurrently: each read's cost is mostly
        FerretDB's per-document work, so two buckets read one after the other took twice as long. A bucket
        that counts a phantom member (ADR 0041) leaves the page short; the next bucket then fills it."""
        bucket, within = stored.lists.locate(status, skip)
        live = stored.lists.live.get(status, [])
        spanned: list[int] = []
        needed = within + limit
        while bucket + len(spanned) < len(live) and needed > 0:
            needed -= live[bucket + len(spanned)]
            spanned.append(bucket + len(spanned))
        # A bucket whose members all left holds none (its live count is never below its members).
        members = await asyncio.gather(
            *(self._list_bucket(stored, status, b) for b in spanned if live[b] > 0 or b == bucket)
        )
        out: list[CallListing] = []
        pending = [doc for i, docs in enumerate(members) for doc in (docs[within:] if i == 0 else docs)]
        bucket += len(spanned)
        while True:
            for doc in pending:
                # A sealed page's member carries its listing; a version is rebuilt first.
                out.append(listing_from_doc(doc["l"]) if "l" in doc else call_from_doc(doc).listing())
                if len(out) == limit:
                    return out
            if bucket >= stored.lists.buckets(status):
                return out
            pending = await self._list_bucket(stored, status, bucket) if live[bucket] > 0 else []
            bucket += 1

    async def all_calls(self, stored: StoredBatch) -> AsyncIterator[StoredCall]:
        """Every call of the batch in row order, one row bucket at a time (for the export)."""
        last_row = max(stored.view.total, stored.view.counts.seen)
        for bucket in range(0, (last_row - 1) // ROW_BUCKET + 1 if last_row else 0):
            docs = await self._row_bucket(stored.view.batch_id, bucket)
            calls = [StoredCall(call_from_doc(d), d["v"], d["pos"]) for d in _latest(docs).values()]
            for call in sorted(calls, key=lambda c: c.view.row_number or 0):
                yield call

    async def feed_page(self, batch_id: str, page: int) -> list[FeedEntry]:
        entries: dict[int, FeedEntry] = {}
        async for doc in self._feed.find({"batch_id": batch_id, "page": page}):
            for e in orjson.loads(doc["entries"]):
                entries.setdefault(
                    e["seq"], FeedEntry(batch_id, doc["workspace_id"], e["seq"], e["kind"], e["data"])
                )
        return [entries[seq] for seq in sorted(entries)]

    async def pending(self) -> list[OutboxItem]:
        """Every outbox item (the delivery task's `Outbox`; finished items are removed, so this is small)."""
        return [
            OutboxItem(
                item_id=d["_id"],
                endpoint_id=d["endpoint_id"],
                workspace_id=d["workspace_id"],
                url=d["url"],
                notice_id=d["notice_id"],
                event=d["event"],
                created_at=d["created_at"],
                body=d["body"],
            )
            async for d in self._outbox.find({})
        ]

    async def remove(self, item_ids: Sequence[str]) -> None:
        for start in range(0, len(item_ids), _WRITE_CHUNK):
            await self._outbox.delete_many({"_id": {"$in": list(item_ids[start : start + _WRITE_CHUNK])}})
