"""How batch, call and feed documents look in MongoDB, and back.

Stays inside what FerretDB stores: no nested arrays (CSV rows are arrays of `{k, v}` documents), no keys with
`.` or a leading `$` (column names are values, never keys), integer epoch milliseconds instead of dates.
A call version keeps as BSON fields only what is queried or sorted on (`contact_id`, `batch_id`, `row_key`,
`list_key`, `v`, `pos`); the slots travel packed in one binary value (ADR 0056), and `from_*` functions
rebuild the view from the slots.
A bucket is named by one field (`row_key`, `list_key`), not by `batch_id` and a number: FerretDB on
PostgreSQL answers an equality on several fields by intersecting one index scan per field, and the scan for
`batch_id` alone returns every version of the batch (ADR 0055).
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.mongo import Document
from shared.outcomes import Outcome, PublicCallStatus
from status.domain.batches import (
    Accepted,
    BatchView,
    Closing,
    Counts,
    Ingested,
    RecentCall,
    Usage,
)
from status.domain.calls import (
    Attempt,
    CallListing,
    CallView,
    ContactRow,
    Ending,
    Finish,
    Retry,
    Skip,
    Variables,
)
from status.ports import LIST_BUCKET, StatusLists, StoredBatch

ROW_BUCKET = 100
"""Call versions carry the key of their row bucket (`row_key`, rows of a hundred): a page of the unfiltered
list is one equality query."""

LAYOUT = 3
"""The read models' document layout. 3: a call version's slots packed in one binary value, eight fields in
all (2: the slots as a JSON string next to eleven fields, five of them derived and never queried; 1: buckets
named by `batch_id` with `row_bucket` or `status` and `list_bucket`). Read models of another layout are
rebuilt from the topics."""


def row_key(batch_id: str, bucket: int) -> str:
    """The one-field name of a batch's row bucket."""
    return f"{batch_id}:{bucket}"


def list_key(batch_id: str, status: str, bucket: int) -> str:
    """The one-field name of a bucket of a batch's list of calls in one status."""
    return f"{batch_id}:{status}:{bucket}"


def call_version_id(contact_id: str, version: int) -> str:
    return f"{contact_id}~{version}"


def _vars(variables: Variables) -> list[Document]:
    return [{"k": k, "v": v} for k, v in variables]


def _unvars(items: list[Document] | None) -> Variables:
    return tuple((str(i["k"]), str(i["v"])) for i in items or ())


def _ending(e: Ending | None) -> Document | None:
    if e is None:
        return None
    return {
        "at": e.at,
        "event_id": e.event_id,
        "outcome": e.outcome.value,
        "started_at": e.started_at,
        "answered_at": e.answered_at,
        "duration_ms": e.duration_ms,
        "billable": e.billable,
        "provider": e.provider,
        "provider_code": e.provider_code,
        "provider_reason": e.provider_reason,
    }


def _unending(d: Document | None) -> Ending | None:
    if d is None:
        return None
    return Ending(
        at=d["at"],
        event_id=d["event_id"],
        outcome=Outcome(d["outcome"]),
        started_at=d["started_at"],
        answered_at=d.get("answered_at"),
        duration_ms=d["duration_ms"],
        billable=d["billable"],
        provider=d["provider"],
        provider_code=d.get("provider_code"),
        provider_reason=d.get("provider_reason"),
    )


_QUERY_FIELDS = ("_id", "contact_id", "v", "pos", "list_key", "batch_id", "row_key")


def call_to_doc(view: CallView, version: int, pos: int) -> Document:
    """The stored form of one version of a call document; `pos` is its place in its status list.

    Only the fields queries use are BSON fields; the slots travel as one orjson value in a BSON binary,
    because FerretDB's cost per document grows with its fields, on insert and on every read (ADR 0041,
    ADR 0056: a page's hundred versions read in about half the time with eight fields instead of thirteen),
    and a binary value needs none of a string's escaping."""
    full = _call_fields(view, version, pos)
    doc = {k: full.pop(k) for k in _QUERY_FIELDS}
    doc["state"] = orjson.dumps(full)  # bytes: stored as a BSON binary
    return doc


ACCEPTED_PAGE_MIN = 8
"""First `waiting` versions of one row bucket and one list bucket, written in one chunk, that go into one
accepted page rather than a document each (fewer are not worth a page: each is read by `contact_id`)."""


def accepted_page(members: list[Document]) -> Document:
    """One document for the first versions of contacts accepted together (ADR 0058): all in `waiting`, of
    one row bucket and one list bucket. A 100,000-row upload is accepted in seconds, and a document per
    contact cost FerretDB and PostgreSQL as much as every later version; a page holds a hundred.

    Its `_id` is its first member's version id, so a chunk written again after a crash meets a duplicate
    key (a member already stored is not written again: the projector reads pages like versions)."""
    first = members[0]
    return {
        "_id": first["_id"],
        "batch_id": first["batch_id"],
        "row_key": first["row_key"],
        "list_key": first["list_key"],
        # The members' slots are embedded as they were serialized for the versions, not encoded again.
        "members": orjson.dumps(
            [
                {
                    "_id": m["_id"],
                    "contact_id": m["contact_id"],
                    "v": m["v"],
                    "pos": m["pos"],
                    "s": orjson.Fragment(m["state"]),
                }
                for m in members
            ]
        ),
    }


def accepted_members(page: Document) -> list[Document]:
    """The versions an accepted page holds, each as the document `call_from_doc` reads (slots unpacked)."""
    shared = {"batch_id": page["batch_id"], "row_key": page["row_key"], "list_key": page["list_key"]}
    members: list[Document] = []
    for member in orjson.loads(page["members"]):
        doc: Document = member.pop("s")
        doc.update(member)
        doc.update(shared)
        members.append(doc)
    return members


def _call_fields(view: CallView, version: int, pos: int) -> Document:
    row = view.row_number
    c, s, r, f = view.contact, view.skip, view.retry, view.finish
    return {
        "_id": call_version_id(view.contact_id, version),
        "contact_id": view.contact_id,
        "v": version,
        "pos": pos,
        "list_key": list_key(view.batch_id, view.status.value, (pos - 1) // LIST_BUCKET),
        "workspace_id": view.workspace_id,
        "batch_id": view.batch_id,
        # Derived, for equality queries:
        "row_key": row_key(view.batch_id, (row - 1) // ROW_BUCKET if row is not None and row > 0 else -1),
        # The slots:
        "contact": None
        if c is None
        else {
            "at": c.at,
            "event_id": c.event_id,
            "row_number": c.row_number,
            "phone_number": c.phone_number,
            "variables": _vars(c.variables),
        },
        "skip": None
        if s is None
        else {
            "at": s.at,
            "event_id": s.event_id,
            "reason": s.reason,
            "detail": s.detail,
            "row_number": s.row_number,
            "phone_number": s.phone_number,
            "variables": _vars(s.variables),
        },
        "attempts": [
            {
                "number": a.number,
                "attempt_id": a.attempt_id,
                "requested_at": a.requested_at,
                "started_at": a.started_at,
                "provider": a.provider,
                "phone_number": a.phone_number,
                "ringing_at": a.ringing_at,
                "answered_at": a.answered_at,
                "answered_by": a.answered_by,
                "ending": _ending(a.ending),
            }
            for a in view.attempts
        ],
        "retry": None
        if r is None
        else {
            "at": r.at,
            "event_id": r.event_id,
            "next_attempt_number": r.next_attempt_number,
            "due_at": r.due_at,
            "after_outcome": r.after_outcome.value,
        },
        "finish": None
        if f is None
        else {"at": f.at, "event_id": f.event_id, "outcome": f.outcome.value, "attempts": f.attempts},
        "cancelled_at": view.cancelled_at,
    }


def listing_to_doc(call: CallListing) -> Document:
    """A call list row as packed into a sealed list page (the variables as `[k, v]` pairs: inside the
    packed value, nested arrays are fine)."""
    return {
        "c": call.contact_id,
        "s": call.status,
        "p": call.phone_number,
        "st": call.start_time,
        "et": call.end_time,
        "d": call.duration_seconds,
        "e": call.error,
        "m": call.variables,
        "r": call.row_number,
        "a": call.attempts,
        "o": call.outcome,
    }


def listing_from_doc(d: Document) -> CallListing:
    return CallListing(
        contact_id=d["c"],
        status=d["s"],
        phone_number=d["p"],
        start_time=d["st"],
        end_time=d["et"],
        duration_seconds=d["d"],
        error=d["e"],
        variables=tuple((str(k), str(v)) for k, v in d["m"]),
        row_number=d["r"],
        attempts=d["a"],
        outcome=d["o"],
    )


def call_from_doc(stored: Document) -> CallView:
    """The call view of a stored document."""
    d = {**orjson.loads(stored["state"]), **stored} if "state" in stored else stored
    c, s, r, f = d.get("contact"), d.get("skip"), d.get("retry"), d.get("finish")
    return CallView(
        contact_id=d["contact_id"],
        workspace_id=d["workspace_id"],
        batch_id=d["batch_id"],
        contact=None
        if c is None
        else ContactRow(c["at"], c["event_id"], c["row_number"], c["phone_number"], _unvars(c["variables"])),
        skip=None
        if s is None
        else Skip(
            s["at"],
            s["event_id"],
            s["reason"],
            s["detail"],
            s["row_number"],
            s["phone_number"],
            _unvars(s["variables"]),
        ),
        attempts=tuple(
            Attempt(
                number=a["number"],
                attempt_id=a["attempt_id"],
                requested_at=a.get("requested_at"),
                started_at=a.get("started_at"),
                provider=a.get("provider"),
                phone_number=a.get("phone_number"),
                ringing_at=a.get("ringing_at"),
                answered_at=a.get("answered_at"),
                answered_by=a.get("answered_by"),
                ending=_unending(a.get("ending")),
            )
            for a in d.get("attempts") or ()
        ),
        retry=None
        if r is None
        else Retry(
            r["at"], r["event_id"], r["next_attempt_number"], r["due_at"], Outcome(r["after_outcome"])
        ),
        finish=None if f is None else Finish(f["at"], f["event_id"], Outcome(f["outcome"]), f["attempts"]),
        cancelled_at=d.get("cancelled_at"),
    )


def _counts(c: Counts) -> Document:
    return {
        "waiting": c.waiting,
        "active": c.active,
        "completed": c.completed,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "skipped": c.skipped,
    }


def _closing(c: Closing | None) -> Document | None:
    if c is None:
        return None
    return {
        "at": c.at,
        "event_id": c.event_id,
        "total": c.total,
        "completed": c.completed,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "skipped": c.skipped,
    }


def _unclosing(d: Document | None) -> Closing | None:
    if d is None:
        return None
    return Closing(
        d["at"], d["event_id"], d["total"], d["completed"], d["failed"], d["cancelled"], d["skipped"]
    )


def batch_to_doc(stored: StoredBatch) -> Document:
    """The stored form of a batch document."""
    view, lists = stored.view, stored.lists
    a, i = view.accepted, view.ingested
    return {
        "_id": view.batch_id,
        "workspace_id": view.workspace_id,
        # Derived, for listing and filtering:
        "status": view.status.value,
        "created_at": view.created_at if view.created_at is not None else 0,
        # The slots:
        "accepted": None
        if a is None
        else {
            "at": a.at,
            "event_id": a.event_id,
            "name": a.name,
            "total_rows": a.total_rows,
            "agent_id": a.agent_id,
            "agent_name": a.agent_name,
            "scheduled_at": a.scheduled_at,
            "webhook_url": a.webhook_url,
            "dry_run": a.dry_run,
            "created_at": a.created_at,
        },
        "ingested": None
        if i is None
        else {
            "at": i.at,
            "event_id": i.event_id,
            "total_rows": i.total_rows,
            "accepted": i.accepted,
            "skipped": i.skipped,
        },
        "started_at": view.started_at,
        "cancel_requested_at": view.cancel_requested_at,
        "cancelled": _closing(view.cancelled),
        "completed": _closing(view.completed),
        "paused_at": view.paused_at,
        "resumed_at": view.resumed_at,
        "counts": _counts(view.counts),
        "billable_attempts": view.billable_attempts,
        "billable_ms": view.billable_ms,
        "billable_minutes": view.billable_minutes,
        "talk_ms": view.talk_ms,
        "talked": view.talked,
        "usage": [
            {"day": u.day, "attempts": u.attempts, "seconds_ms": u.seconds_ms, "minutes": u.minutes}
            for u in view.usage
        ],
        "first_call_at": view.first_call_at,
        "last_completed_at": view.last_completed_at,
        "recent": [
            {
                "job_id": r.job_id,
                "status": r.status.value,
                "phone_number": r.phone_number,
                "at": r.at,
                "duration_ms": r.duration_ms,
                "error": r.error,
            }
            for r in view.recent
        ],
        "columns": None if view.columns is None else {"row": view.columns[0], "names": list(view.columns[1])},
        "offsets": [{"p": p, "o": o} for p, o in sorted(view.offsets.items())],
        "feed_seq": view.feed_seq,
        # Packed (a BSON binary of orjson): a list keeps a count per hundred positions, so a batch of
        # 100,000 calls has thousands, and FerretDB converted each on every write of the batch (one per
        # chunk) and every read (each status poll): 20 ms of its and PostgreSQL's CPU per read or write
        # with them as array elements, 2 ms packed. No query looks inside.
        "lists": orjson.dumps(
            [
                {"status": status, "next": lists.next_pos.get(status, 0), "live": lists.live.get(status, [])}
                for status in sorted(set(lists.next_pos) | set(lists.live))
            ]
        ),
    }


def batch_from_doc(d: Document) -> StoredBatch:
    """The batch view of a stored document, with its list bookkeeping."""
    stored = d.get("lists") or ()
    # Packed since the lists grew with the batch; a document written before holds them as elements.
    entries: list[Any] = orjson.loads(stored) if isinstance(stored, bytes) else list(stored)
    lists = StatusLists(
        {e["status"]: int(e["next"]) for e in entries},
        {e["status"]: [int(n) for n in e["live"]] for e in entries},
    )
    return StoredBatch(_batch_view(d), lists)


def _batch_view(d: Document) -> BatchView:
    a, i, cols = d.get("accepted"), d.get("ingested"), d.get("columns")
    counts: dict[str, Any] = d.get("counts") or {}
    return BatchView(
        batch_id=d["_id"],
        workspace_id=d["workspace_id"],
        accepted=None
        if a is None
        else Accepted(
            at=a["at"],
            event_id=a["event_id"],
            name=a.get("name"),
            total_rows=a["total_rows"],
            agent_id=a["agent_id"],
            agent_name=a.get("agent_name", ""),
            scheduled_at=a.get("scheduled_at"),
            webhook_url=a.get("webhook_url"),
            dry_run=bool(a.get("dry_run")),
            created_at=a["created_at"],
        ),
        ingested=None
        if i is None
        else Ingested(i["at"], i["event_id"], i["total_rows"], i["accepted"], i["skipped"]),
        started_at=d.get("started_at"),
        cancel_requested_at=d.get("cancel_requested_at"),
        cancelled=_unclosing(d.get("cancelled")),
        completed=_unclosing(d.get("completed")),
        paused_at=d.get("paused_at"),
        resumed_at=d.get("resumed_at"),
        counts=Counts(**{k: int(counts.get(k, 0)) for k in Counts.__dataclass_fields__}),
        billable_attempts=d.get("billable_attempts", 0),
        billable_ms=d.get("billable_ms", 0),
        billable_minutes=d.get("billable_minutes", 0),
        talk_ms=d.get("talk_ms", 0),
        talked=d.get("talked", 0),
        usage=tuple(
            Usage(u["day"], u["attempts"], u["seconds_ms"], u["minutes"]) for u in d.get("usage") or ()
        ),
        first_call_at=d.get("first_call_at"),
        last_completed_at=d.get("last_completed_at"),
        recent=tuple(
            RecentCall(
                r["job_id"],
                PublicCallStatus(r["status"]),
                r.get("phone_number"),
                r["at"],
                r.get("duration_ms"),
                r.get("error"),
            )
            for r in d.get("recent") or ()
        ),
        columns=None if cols is None else (cols["row"], tuple(cols["names"])),
        offsets={o["p"]: o["o"] for o in d.get("offsets") or ()},
        feed_seq=d.get("feed_seq", 0),
    )
