"""The hand-written contact encoders produce exactly what `shared.events.encode` produces."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.adapters.contact_wire import ContactEncoder, encode_contacts, random_uuid4s, wire_timestamp
from ingest.domain.verdicts import Verdict
from ingest.ports import ContactRow
from shared.events import SCHEMA_VERSION, ContactAccepted, ContactSkipped, decode, encode
from shared.outcomes import SkipReason

pytestmark = pytest.mark.unit

texts = st.text(max_size=12)
variables = st.dictionaries(st.text(min_size=1, max_size=8), texts, max_size=4)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
) | st.just(datetime(2026, 1, 1, tzinfo=UTC))


@given(workspace=texts, row=st.integers(1, 10**6), phone=texts, values=variables, now=moments)
def test_accepted_bytes_equal_the_models(
    workspace: str, row: int, phone: str, values: dict[str, str], now: datetime
) -> None:
    event_id = next(random_uuid4s(1))
    body = ContactEncoder(workspace, "batch_ab12", wire_timestamp(now), SCHEMA_VERSION).accepted(
        event_id, row, phone, values
    )
    model = ContactAccepted(
        event_id=uuid.UUID(event_id.decode()),
        occurred_at=now,
        workspace_id=workspace,
        correlation_id="batch_ab12",
        batch_id="batch_ab12",
        contact_id=f"batch_ab12_r{row}",
        row_number=row,
        phone_number=phone,
        variables=values,
    )
    assert body == encode(model)
    assert decode(body) == model


@given(reason=st.sampled_from(list(SkipReason)), detail=texts, phone=texts, values=variables, now=moments)
def test_skipped_bytes_equal_the_models(
    reason: SkipReason, detail: str, phone: str, values: dict[str, str], now: datetime
) -> None:
    verdict = Verdict(7, phone, reason, detail)
    (body,) = encode_contacts("ws_1", "batch_ab12", [ContactRow(verdict, variables=values)], now)
    decoded = decode(body)
    assert isinstance(decoded, ContactSkipped)
    expected = ContactSkipped(
        event_id=decoded.event_id,
        occurred_at=now,
        workspace_id="ws_1",
        correlation_id="batch_ab12",
        batch_id="batch_ab12",
        contact_id="batch_ab12_r7",
        row_number=7,
        phone_number=phone,
        reason=reason,
        detail=detail,
        variables=values,
    )
    assert body == encode(expected)


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [uuid.UUID(raw.decode()) for raw in random_uuid4s(1000)]
    assert len(set(ids)) == 1000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)


def test_timestamps_with_an_offset_are_written_as_pydantic_writes_them() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(microseconds=5)
    body = ContactEncoder("ws", "batch_1", wire_timestamp(now), SCHEMA_VERSION).accepted(
        next(random_uuid4s(1)), 1, "+1", {}
    )
    assert decode(body).occurred_at == now


def test_the_worker_module_does_not_import_pydantic() -> None:
    import subprocess
    import sys

    probe = "import sys, ingest.adapters.row_worker; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # keeps each validation worker ~20 MB smaller
