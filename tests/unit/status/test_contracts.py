"""The reference API's response examples parse into our response models field for field; documents survive
a round trip through their stored form; export cells and webhook signatures behave."""

from __future__ import annotations

import random

import orjson
import pytest

from status.adapters.documents import batch_from_doc, batch_to_doc, call_from_doc, call_to_doc
from status.domain.signing import signature, verify
from status.entrypoints.export import safe_cell
from status.entrypoints.schemas import BatchStatusBody, CallsBody, FlatStatusBody
from status.ports import StatusLists, StoredBatch
from tests.unit.status.fakes import MemoryReadModels, StaticRoutes
from tests.unit.status.scenarios import chunks, history

pytestmark = pytest.mark.unit

REFERENCE_BATCH = {
    "id": "batch_7891011121314",
    "status": "processing",
    "isComplete": False,
    "totalCalls": 150,
    "progress": {
        "waiting": 100,
        "active": 5,
        "completed": 40,
        "failed": 5,
        "total": 150,
        "startTime": 1718000000000,
        "lastCompletedTime": 1718000300000,
        "completedTime": None,
        "averageCallDuration": 62.5,
        "recent_calls": [
            {
                "jobId": "job_1",
                "status": "completed",
                "phone_number": "+1234567890",
                "completedAt": 1718000300000,
            }
        ],
    },
    "timestamp": 1718000301000,
}
REFERENCE_FLAT = {
    "id": "batch_7891011121314",
    "status": "processing",
    "isComplete": False,
    "totalCalls": 150,
    "waiting": 100,
    "active": 5,
    "completed": 40,
    "failed": 5,
    "total": 150,
    "startTime": 1718000000000,
    "lastCompletedTime": 1718000300000,
    "completedTime": None,
    "averageCallDuration": 62.5,
    "recent_calls": [
        {"jobId": "job_1", "status": "completed", "phone_number": "+1234567890", "duration": 71.2},
        {"jobId": "job_2", "status": "failed", "phone_number": "+1987654321", "failedAt": 1718000200000,
         "error": "Number busy"},
    ],
    "timestamp": 1718000301000,
}  # fmt: skip
REFERENCE_CALLS = {
    "calls": [
        {
            "jobId": "job_1",
            "status": "completed",
            "phone_number": "+1234567890",
            "startTime": 1718000000000,
            "endTime": 1718000071200,
            "duration": 71.2,
            "error": None,
            "metadata": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com"},
        }
    ],
    "pagination": {"page": 1, "limit": 20, "total": 150, "totalPages": 8, "hasNext": True, "hasPrev": False},
    "summary": {"total": 150, "waiting": 100, "active": 5, "completed": 40, "failed": 5},
}


@pytest.mark.parametrize(
    ("model", "example"),
    [(BatchStatusBody, REFERENCE_BATCH), (FlatStatusBody, REFERENCE_FLAT), (CallsBody, REFERENCE_CALLS)],
)
def test_reference_examples_parse_field_for_field(model: type, example: dict[str, object]) -> None:
    parsed = model.model_validate(example)
    dumped = parsed.model_dump()
    for key, value in example.items():
        if isinstance(value, dict):
            assert {k: dumped[key][k] for k in value} == value
        elif isinstance(value, list):
            assert [{k: d[k] for k in v} for d, v in zip(dumped[key], value, strict=True)] == value
        else:
            assert dumped[key] == value


async def test_documents_round_trip_through_their_stored_form() -> None:
    store = MemoryReadModels()
    from status.handlers import Projector

    projector = Projector(store, StaticRoutes(), now_ms=lambda: 0)
    h = history(21, rows=15, cancel=True)
    for chunk in chunks(h.records(), random.Random(4)):
        await projector.project(chunk)
    for stored in store.calls.values():
        assert call_from_doc(call_to_doc(stored.view, stored.version, stored.pos)) == stored.view
    batch = store.batches[h.batch_id]
    assert batch_from_doc(batch_to_doc(batch)) == batch
    empty = StoredBatch(batch.view, StatusLists())
    assert batch_from_doc(batch_to_doc(empty)).lists == StatusLists()
    # A batch document written before its lists were packed holds them as elements: still read.
    unpacked = {**batch_to_doc(batch), "lists": orjson.loads(batch_to_doc(batch)["lists"])}
    assert isinstance(unpacked["lists"], list) and unpacked["lists"]
    assert batch_from_doc(unpacked) == batch


@pytest.mark.parametrize(
    ("cell", "safe"),
    [("=1+2", "'=1+2"), ("+15550100", "'+15550100"), ("-3", "'-3"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("John", "John"), ("", ""), (None, ""), (42, "42")],
)  # fmt: skip
def test_export_cells_that_would_start_a_formula_are_neutralised(cell: object, safe: str) -> None:
    assert safe_cell(cell) == safe


def test_signature_covers_timestamp_and_body() -> None:
    header = signature("whsec_abc", 1_700_000_000, b'{"id":"x"}')
    assert header.startswith("t=1700000000,v1=")
    assert verify("whsec_abc", header, b'{"id":"x"}', now=1_700_000_010)
    assert not verify("whsec_abc", header, b'{"id":"y"}', now=1_700_000_010)
    assert not verify("whsec_other", header, b'{"id":"x"}', now=1_700_000_010)
    assert not verify("whsec_abc", header, b'{"id":"x"}', now=1_700_009_999)  # a replay, too old
