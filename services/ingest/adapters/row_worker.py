"""What runs inside a validation worker process.

It imports only phonenumbers, orjson and pure domain code — not pydantic, FastAPI or the drivers — which
keeps each worker about 20 MB smaller. The parent side is `validation_pool`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from ingest.domain.csv_layout import Header
from ingest.domain.ids import contact_id
from ingest.domain.phone import INVALID_MARK, normalise_many

_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def random_uuid4s(count: int) -> Iterator[bytes]:
    """Random version-4 UUIDs as ASCII, from one `os.urandom` call (uuid.uuid4() costs ~3 µs each)."""
    pool = os.urandom(16 * count).hex()
    for i in range(0, 32 * count, 32):
        h = pool[i : i + 32]
        yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}".encode()


@dataclass(frozen=True)
class WorkerJob:
    """The batch-wide part of a block's work, in plain values."""

    workspace_id: str
    batch_id: str
    default_region: str | None
    occurred_at_json: bytes
    """The timestamp as pydantic writes it, JSON-quoted (see `contact_wire.wire_timestamp`)."""
    schema_version: int
    encode: bool = True


class ContactEncoder:
    """Encodes the contact events of one batch at one moment, field order as in `shared.events`."""

    def __init__(
        self, workspace_id: str, batch_id: str, occurred_at_json: bytes, schema_version: int
    ) -> None:
        dumps = orjson.dumps
        self._batch_id = batch_id
        envelope = (
            b'","schema_version":'
            + str(schema_version).encode()
            + b',"occurred_at":'
            + occurred_at_json
            + b',"workspace_id":'
            + dumps(workspace_id)
            + b',"correlation_id":'
            + dumps(batch_id)
        )
        self._accepted = (
            envelope + b',"type":"contact.accepted","batch_id":' + dumps(batch_id) + b',"contact_id":'
        )
        self._skipped = (
            envelope + b',"type":"contact.skipped","batch_id":' + dumps(batch_id) + b',"contact_id":'
        )

    def accepted(
        self, event_id: bytes, row_number: int, phone_number: str, variables: dict[str, str]
    ) -> bytes:
        dumps = orjson.dumps
        return b"".join(
            (
                b'{"event_id":"',
                event_id,
                self._accepted,
                dumps(contact_id(self._batch_id, row_number)),
                b',"row_number":',
                str(row_number).encode(),
                b',"phone_number":',
                dumps(phone_number),
                b',"variables":',
                dumps(variables),
                b"}",
            )
        )

    def skipped(
        self,
        event_id: bytes,
        row_number: int,
        phone_number: str,
        reason: str,
        detail: str,
        variables: dict[str, str],
    ) -> bytes:
        dumps = orjson.dumps
        return b"".join(
            (
                b'{"event_id":"',
                event_id,
                self._skipped,
                dumps(contact_id(self._batch_id, row_number)),
                b',"row_number":',
                str(row_number).encode(),
                b',"phone_number":',
                dumps(phone_number),
                b',"reason":',
                dumps(reason),
                b',"detail":',
                dumps(detail),
                b',"variables":',
                dumps(variables),
                b"}",
            )
        )


def prepare_cells(
    header: Header, rows: list[int], cells: list[list[str]], job: WorkerJob
) -> tuple[list[str], list[bytes]]:
    """One block's work: normalised numbers and, for valid ones, the `ContactAccepted` bodies."""
    phone_of, variables_of = header.phone_of, header.variables_of
    normalised = normalise_many([phone_of(row) for row in cells], job.default_region)
    if not job.encode:
        return normalised, [b""] * len(cells)
    encoder = ContactEncoder(job.workspace_id, job.batch_id, job.occurred_at_json, job.schema_version)
    bodies: list[bytes] = []
    append = bodies.append
    for row_number, row, result, event_id in zip(
        rows, cells, normalised, random_uuid4s(len(cells)), strict=True
    ):
        if result.startswith(INVALID_MARK):
            append(b"")
        else:
            append(encoder.accepted(event_id, row_number, result, variables_of(row)))
    return normalised, bodies


def _exit_with_parent(parent: int) -> None:
    # A worker whose ingest process was killed (SIGKILL, OOM) would otherwise live on as an orphan.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def start_worker() -> None:
    """The pool's initializer."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # Load the metadata of the common regions once per worker, not during the first upload.
    normalise_many(["+14155550123", "+442079460958", "+33142685300", "+4930901820"], None)
