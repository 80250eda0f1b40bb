"""A concurrent-call slot held by one attempt: freed by the call's end event, or when it expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispatcher.domain.batch import QueuedContact

LEASE_GRACE = timedelta(seconds=60)
"""Added to the agent's longest call: time for the dialer to report the end before the slot is taken back."""


@dataclass(frozen=True)
class Lease:
    attempt_id: str
    workspace_id: str
    partition: int
    contact: QueuedContact
    requested_at: datetime
    expires_at: datetime

    @staticmethod
    def expiry(requested_at: datetime, max_call_seconds: int, grace: timedelta = LEASE_GRACE) -> datetime:
        return requested_at + timedelta(seconds=max_call_seconds) + grace

    def to_document(self) -> dict[str, Any]:
        c = self.contact
        return {
            "_id": self.attempt_id,
            "workspace_id": self.workspace_id,
            "partition": self.partition,
            "batch_id": c.batch_id,
            "contact_id": c.contact_id,
            "row_number": c.row_number,
            "phone_number": c.phone_number,
            "variables": [[name, value] for name, value in c.variables.items()],  # pairs: see entry_doc
            "lane": c.lane,
            "attempt_number": c.attempt_number,
            "previous": list(c.previous),
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Lease:
        return cls(
            attempt_id=doc["_id"],
            workspace_id=doc["workspace_id"],
            partition=int(doc["partition"]),
            contact=QueuedContact(
                contact_id=doc["contact_id"],
                batch_id=doc["batch_id"],
                row_number=int(doc["row_number"]),
                phone_number=doc["phone_number"],
                variables=dict(doc.get("variables") or {}),
                lane=doc.get("lane", ""),
                attempt_number=int(doc["attempt_number"]),
                previous=tuple(doc.get("previous") or ()),
            ),
            requested_at=doc["requested_at"],
            expires_at=doc["expires_at"],
        )
