"""Contact events written straight to their wire form.

An upload publishes one event per row, 250,000 for a 20 MB file; building and serialising a pydantic
model per row costs about 15 µs, most of an upload's publishing budget. These encoders produce the same
bytes as `shared.events.encode` (the unit tests compare them byte for byte) at a fraction of the cost.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime

import orjson
from pydantic import AwareDatetime, TypeAdapter

from ingest.domain.ids import contact_id
from ingest.ports import ContactRow
from shared.events import SCHEMA_VERSION

_TIMESTAMP: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def wire_timestamp(moment: datetime) -> str:
    """The timestamp exactly as pydantic writes it (`...Z` for UTC)."""
    return _TIMESTAMP.dump_json(moment).decode()[1:-1]


def random_uuid4s(count: int) -> Iterator[str]:
    """Random version-4 UUIDs as strings, from one `os.urandom` call (uuid.uuid4() costs ~3 µs each)."""
    pool = os.urandom(16 * count).hex()
    for i in range(0, 32 * count, 32):
        h = pool[i : i + 32]
        yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def encode_contacts(
    workspace_id: str, batch_id: str, rows: Sequence[ContactRow], now: datetime
) -> list[bytes]:
    """`ContactAccepted` / `ContactSkipped` bodies for `rows`, in order."""
    occurred_at = wire_timestamp(now)
    dumps = orjson.dumps
    out: list[bytes] = []
    append = out.append
    for row, event_id in zip(rows, random_uuid4s(len(rows)), strict=True):
        verdict = row.verdict
        if verdict.skip is None:
            body = {
                "event_id": event_id,
                "schema_version": SCHEMA_VERSION,
                "occurred_at": occurred_at,
                "workspace_id": workspace_id,
                "correlation_id": batch_id,
                "type": "contact.accepted",
                "batch_id": batch_id,
                "contact_id": contact_id(batch_id, verdict.row_number),
                "row_number": verdict.row_number,
                "phone_number": verdict.phone_number,
                "variables": row.variables,
            }
        else:
            body = {
                "event_id": event_id,
                "schema_version": SCHEMA_VERSION,
                "occurred_at": occurred_at,
                "workspace_id": workspace_id,
                "correlation_id": batch_id,
                "type": "contact.skipped",
                "batch_id": batch_id,
                "contact_id": contact_id(batch_id, verdict.row_number),
                "row_number": verdict.row_number,
                "phone_number": verdict.phone_number,
                "reason": verdict.skip.value,
                "detail": verdict.detail,
                "variables": row.variables,
            }
        append(dumps(body))
    return out
