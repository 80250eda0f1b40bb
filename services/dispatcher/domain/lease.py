"""A concurrent-call slot held by one attempt: freed by the call's end event, or when it expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispatcher.domain.batch import QueuedContact

LEASE_GRACE = timedelta(seconds=60)
"""Added to the agent's longest call: time for the dialer to report the end before the slot is taken back."""


def variables_doc(variables: dict[str, str]) -> list[dict[str, str]]:
    """A contact's variables as `{k, v}` items, not a sub-document: a CSV column name may hold `.`, start
    with `$` or hold a NUL byte, none of which MongoDB / FerretDB take as a key (and FerretDB stores no
    nested arrays)."""
    return [{"k": name, "v": value} for name, value in variables.items()]


def variables_of(stored: Any) -> dict[str, str]:
    """Reads what `variables_doc` wrote (and the sub-documents written before it)."""
    if isinstance(stored, list):
        return {str(item["k"]): str(item["v"]) for item in stored}
    return dict(stored or {})


@dataclass(frozen=True)
class Lease:
    attempt_id: str
    workspace_id: str
    partition: int
    contact: QueuedContact
    requested_at: datetime
    expires_at: datetime
    slot: tuple[float, float] | None = None
    """The start slot (start, by; seconds on the wall clock) its call request carries: a new owner of the
    workspace plans around it (docs/adr/0024). None: a lease written before slots were stored."""

    @staticmethod
    def expiry(requested_at: datetime, max_call_seconds: int, grace: timedelta = LEASE_GRACE) -> datetime:
        return requested_at + timedelta(seconds=max_call_seconds) + grace

    def to_document(self) -> dict[str, Any]:
        """A lease as it is kept in its book (`domain.lease_book`; the book is stored packed, ADR 0025)."""
        c = self.contact
        contact: dict[str, Any] = {
            "contact_id": c.contact_id,
            "row_number": c.row_number,
            "phone_number": c.phone_number,
            "variables": variables_doc(c.variables),
            "lane": c.lane,
            "attempt_number": c.attempt_number,
            "previous": list(c.previous),
        }
        if c.trace:
            contact["traceparent"] = c.trace
        doc: dict[str, Any] = {
            "_id": self.attempt_id,
            "workspace_id": self.workspace_id,
            "partition": self.partition,
            "batch_id": c.batch_id,
            "contact": contact,
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
        }
        if self.slot is not None:
            doc["slot_start"], doc["slot_by"] = self.slot
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Lease:
        """Reads what `to_document` wrote, unpacked from a book (times as ISO text), and the leases stored
        one document each before books (ADR 0025), the contact's fields next to the lease's."""
        if "contact" in doc:
            doc = {**doc, **doc["contact"]}
        return cls(
            attempt_id=doc["_id"],
            workspace_id=doc["workspace_id"],
            partition=int(doc["partition"]),
            contact=QueuedContact(
                contact_id=doc["contact_id"],
                batch_id=doc["batch_id"],
                row_number=int(doc["row_number"]),
                phone_number=doc["phone_number"],
                variables=variables_of(doc.get("variables")),
                lane=doc.get("lane", ""),
                attempt_number=int(doc["attempt_number"]),
                previous=tuple(doc.get("previous") or ()),
                trace=doc.get("traceparent") or "",
            ),
            requested_at=_time(doc["requested_at"]),
            expires_at=_time(doc["expires_at"]),
            slot=(float(doc["slot_start"]), float(doc["slot_by"])) if "slot_by" in doc else None,
        )


def _time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
