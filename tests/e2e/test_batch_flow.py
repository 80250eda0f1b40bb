"""A batch from upload to its last call, as a client of the reference API would drive it.

The seed's curl commands are run as written (curl, `-F "file=@..."`, `-F "agentId=..."`), on both URL
prefixes; the rest uses httpx. Every contact must end in a terminal state, with the reference's shapes.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack_client import (
    ANSWERED,
    BLOCKED,
    BUSY,
    FAST_RETRIES,
    GATEWAY,
    INVALID,
    NO_ANSWER,
    OPEN_WINDOW,
    OPTED_OUT,
    TERMINAL_CALL_STATES,
    UNREACHABLE,
    VOICEMAIL,
    Api,
    contacts_csv,
)

pytestmark = pytest.mark.e2e

SEED_CSV = (
    "phone_number,first_name,last_name,email,custom_field_1,custom_field_2\n"
    "+1234567890,John,Doe,john.doe@example.com,Premium Customer,West Coast\n"
    "+1987654321,Jane,Smith,jane.smith@example.com,Standard Customer,East Coast\n"
)


def _curl(api: Api, *args: str, tries: int = 1) -> dict[str, Any]:
    """Runs curl as the seed writes it, with the workspace's headers; returns the JSON body. `tries` > 1
    repeats a failing request once a second (the status API shows a batch once it has projected it)."""
    ws = api.workspace
    command = ["curl", "-sS", "--fail-with-body", "-H", f"x-api-key: {ws.api_key}"]
    command += ["-H", f"x-workspace-id: {ws.workspace_id}", *args]
    for attempt in range(tries):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode == 0 or attempt == tries - 1:
            break
        time.sleep(1)
    assert done.returncode == 0, f"curl {args}: {done.returncode} {done.stdout} {done.stderr}"
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _assert_reference_batch_shape(body: dict[str, Any], batch_id: str) -> None:
    assert body["id"] == batch_id
    assert body["status"] in ("queued", "processing", "paused", "completed", "cancelled", "failed")
    assert isinstance(body["isComplete"], bool)
    assert isinstance(body["timestamp"], int)
    progress = body["progress"]
    for key in ("waiting", "active", "completed", "failed", "total"):
        assert isinstance(progress[key], int), key
    for key in ("startTime", "lastCompletedTime", "completedTime", "averageCallDuration", "recent_calls"):
        assert key in progress, key


@pytest.mark.parametrize("prefix", ["/v1/batch-calls", "/v1/api/batch-calls"])
def test_the_seed_curl_flow_as_written(api: Api, agent_id: str, tmp_path: Path, prefix: str) -> None:
    """The overview's CSV verbatim: its example numbers are not real numbers, so both rows are skipped at
    upload (failed, "Invalid phone number") and the batch still ends."""
    contacts = tmp_path / "your-contacts.csv"
    contacts.write_text(SEED_CSV)
    started = _curl(
        api, "-X", "POST", f"{GATEWAY}{prefix}", "-F", f"file=@{contacts}", "-F", f"agentId={agent_id}"
    )
    batch_id = started["batchId"]
    assert batch_id.startswith("batch_")
    assert started["totalCalls"] == 2
    assert started["status"] == "queued"
    assert started["message"] == "Batch calls initiated successfully"

    monitored = _curl(api, "-X", "GET", f"{GATEWAY}{prefix}/{batch_id}", tries=30)
    _assert_reference_batch_shape(monitored, batch_id)
    assert monitored["totalCalls"] == 2

    final = api.wait(batch_id)
    assert final["progress"]["failed"] == 2 and final["progress"]["waiting"] == 0
    calls = api.calls(batch_id, expect=2)
    assert sorted(c["jobId"] for c in calls) == [f"{batch_id}_r1", f"{batch_id}_r2"]
    assert {c["status"] for c in calls} == {"failed"}
    assert {c["error"] for c in calls} == {"Invalid phone number"}
    assert calls[0]["metadata"]["email"].endswith("@example.com")


def test_the_seed_csv_with_dialable_numbers_completes_on_the_postman_prefix(api: Api, agent_id: str) -> None:
    body = SEED_CSV.replace("+1234567890", ANSWERED).replace("+1987654321", VOICEMAIL).encode()
    started = api.start(body, agent_id, prefix="/v1/api/batch-calls", callingWindow=OPEN_WINDOW)
    assert started.status_code == 200, started.text
    batch_id = started.json()["batchId"]
    final = api.wait(batch_id)
    assert final["status"] == "completed"
    assert (final["progress"]["completed"], final["progress"]["failed"]) == (2, 0)
    flat = api.http.get(f"/v1/api/batch-calls/{batch_id}/status")
    assert flat.status_code == 200, flat.text
    flat_body = flat.json()
    assert flat_body["completed"] == 2 and flat_body["isComplete"] is True
    assert all("duration" in c for c in flat_body["recent_calls"])


MIXED = [
    (ANSWERED, "completed", None),
    (VOICEMAIL, "completed", None),
    (BUSY, "failed", "Number busy"),
    (NO_ANSWER, "failed", "No answer"),
    (UNREACHABLE, "failed", "Number unreachable"),
    (INVALID, "failed", "Invalid phone number"),
    (BLOCKED, "failed", "Carrier blocked"),
    (OPTED_OUT, "failed", "Recipient opted out"),
    ("12345", "failed", "Invalid phone number"),  # skipped at upload
    (ANSWERED, "failed", "Duplicate phone number in batch"),  # skipped at upload
]
"""(number, final public status, error text) for each row of the mixed batch, in row order."""


@pytest.fixture(scope="module")
def mixed_batch() -> Any:
    """One batch of every test number, run to its end once for the tests of this module."""
    from tests.e2e.stack_client import create_workspace

    api = Api(create_workspace("mixed"))
    agent = api.create_agent(prompt="Hello {first_name}, about {plan}")
    rows = [
        {"phone_number": number, "first_name": f"P{i}", "plan": "=1+2" if i == 1 else "gold"}
        for i, (number, _, _) in enumerate(MIXED, start=1)
    ]
    batch_id = api.start_ok(
        contacts_csv(rows), agent, callingWindow=OPEN_WINDOW, smartCallbackConfig=FAST_RETRIES
    )
    final = api.wait(batch_id, timeout=240)
    yield api, batch_id, final
    api.close()


def test_every_contact_of_a_mixed_batch_ends_terminal(mixed_batch: Any) -> None:
    api, batch_id, final = mixed_batch
    assert final["isComplete"] is True and final["status"] == "completed"
    progress = final["progress"]
    assert progress["total"] == len(MIXED) == final["totalCalls"]
    assert (progress["waiting"], progress["active"]) == (0, 0)
    assert progress["completed"] == 2 and progress["failed"] == len(MIXED) - 2

    calls = {c["jobId"]: c for c in api.calls(batch_id, expect=len(MIXED))}
    assert len(calls) == len(MIXED)
    for row, (number, status, error) in enumerate(MIXED, start=1):
        call = calls[f"{batch_id}_r{row}"]
        assert call["status"] == status, (row, number, call)
        assert call["status"] in TERMINAL_CALL_STATES
        if error is not None:
            assert call["error"] == error, (row, number, call)
    completed = api.http.get(f"/v1/batch-calls/{batch_id}/calls", params={"status": "completed"}).json()
    assert completed["summary"]["completed"] == 2 and completed["pagination"]["total"] == 2
    assert {c["status"] for c in completed["calls"]} == {"completed"}

    for prefix in ("/v1/batch-calls", "/v1/api/batch-calls"):
        assert api.batch(batch_id, prefix)["progress"]["total"] == len(MIXED)


def _attempts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's attempt history (`history`, one item per attempt, oldest first)."""
    attempts: list[dict[str, Any]] = job["history"]
    return attempts


def _attempt_id(attempt: dict[str, Any]) -> str:
    return str(attempt["attemptId"])


@pytest.mark.parametrize(
    ("row", "outcome", "attempts"),
    [
        (3, "busy", 3),
        (4, "no_answer", 3),
        (5, "unreachable", 2),
        (1, "completed", 1),
        (7, "carrier_blocked", 1),
    ],
)
def test_retries_by_outcome_show_in_the_attempt_history(
    mixed_batch: Any, row: int, outcome: str, attempts: int
) -> None:
    """Busy and no answer retry up to smartCallbackConfig's maxAttempts, unreachable once, each retry a
    new attempt id; a completed or blocked call never retries."""
    api, batch_id, _ = mixed_batch
    job_id = f"{batch_id}_r{row}"
    history = _attempts(api.job(batch_id, job_id))
    assert [_attempt_id(a) for a in history] == [f"{job_id}_a{n}" for n in range(1, attempts + 1)]
    assert [a.get("outcome") for a in history] == [outcome] * attempts


def test_an_opt_out_adds_the_number_to_the_do_not_call_list(mixed_batch: Any) -> None:
    api, _, _ = mixed_batch
    listed = api.http.get("/v1/dnc", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    assert OPTED_OUT in {e["phone_number"] for e in listed.json()["entries"]}


def test_the_export_has_every_contact_and_neutralises_formulas(mixed_batch: Any) -> None:
    api, batch_id, _ = mixed_batch
    exported = api.http.get(f"/v1/batch-calls/{batch_id}/export")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(MIXED)
    columns = {c.lower() for c in rows[0]}
    for wanted in ("outcome", "attempts", "duration", "billable"):
        assert any(wanted in c for c in columns), (wanted, columns)
    # The first row's `plan` cell was "=1+2": a spreadsheet must not run it.
    cells = [value for row in rows for value in row.values() if value and "1+2" in value]
    assert cells and all(not cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    # Numbers keep their `+` as text: `'+1202...` (a spreadsheet would otherwise read a formula).
    busy = next(r for r in rows if f"'{BUSY}" in r.values() or BUSY in r.values())
    assert any(v == "3" for k, v in busy.items() if "attempt" in k.lower()), busy
