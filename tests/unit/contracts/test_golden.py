"""Golden files of the wire format: a change to a contract shows up here and in review.

Regenerate deliberately with `UPDATE_GOLDEN=1 make test-unit` and commit the diff with the contract change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import events as ev
from tests.unit.contracts.examples import EXAMPLES

pytestmark = pytest.mark.unit
GOLDEN = Path(__file__).parent / "golden"


def test_every_message_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(ev.message_types())


@pytest.mark.parametrize("kind", sorted(ev.message_types()))
def test_wire_format_matches_golden_file(kind: str) -> None:
    path = GOLDEN / f"{kind}.json"
    produced = json.dumps(json.loads(ev.encode(EXAMPLES[kind])), indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(produced)
    assert path.read_text() == produced, f"the wire format of {kind} changed; see this module's docstring"


@pytest.mark.parametrize("kind", sorted(ev.message_types()))
def test_golden_file_decodes_to_the_same_message(kind: str) -> None:
    decoded = ev.decode((GOLDEN / f"{kind}.json").read_bytes())
    assert decoded == EXAMPLES[kind]
    assert type(decoded) is ev.message_types()[kind]


def test_naive_datetimes_are_rejected() -> None:
    body = json.loads(ev.encode(EXAMPLES["batch.pause"]))
    body["occurred_at"] = "2026-12-03T10:00:00"
    with pytest.raises(ValidationError, match="timezone"):
        ev.decode(json.dumps(body))


def test_unknown_type_and_unknown_fields_are_rejected() -> None:
    body = json.loads(ev.encode(EXAMPLES["batch.pause"]))
    with pytest.raises(ValidationError):
        ev.decode(json.dumps({**body, "type": "batch.exploded"}))
    with pytest.raises(ValidationError):
        ev.decode(json.dumps({**body, "surprise": 1}))


def test_a_future_schema_version_is_refused_not_misread() -> None:
    body = json.loads(ev.encode(EXAMPLES["batch.pause"]))
    with pytest.raises(ValidationError):
        ev.decode(json.dumps({**body, "schema_version": 2}))


def test_a_call_request_from_before_start_slots_still_decodes() -> None:
    # `not_before` and `start_by` are additive (schema_version stays 1): requests published without them
    # start at once, and a slot without its end keeps the fixed tolerance.
    body = json.loads((GOLDEN / "call.requested.json").read_bytes())
    del body["not_before"], body["start_by"]
    decoded = ev.decode(json.dumps(body))
    assert isinstance(decoded, ev.CallRequested)
    assert decoded.not_before is None and decoded.start_by is None
