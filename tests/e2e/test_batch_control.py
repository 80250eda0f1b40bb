"""Cancel, pause and resume, schedules and calling windows, on the running stack.

A slow workspace (one call at a time, one call a second) keeps a batch running long enough to act on it
mid-way. The calls are simulated numbers with a seeded outcome mix and time-scaled lengths.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import MakeApi
from tests.e2e.stack_client import FAST_RETRIES, OPEN_WINDOW, TERMINAL_CALL_STATES, Api, contacts_csv

pytestmark = pytest.mark.e2e

FINISHED = ("completed", "failed")
"""How a batch of ordinary numbers ends: the simulated provider draws each call's outcome, so every contact
of a small batch can fail after its retries, and a batch with no completed call is shown as failed."""


def numbers(count: int, start: int = 1000) -> list[str]:
    """Distinct valid Washington DC numbers (America/New_York) that are not test numbers."""
    return [f"+1202555{start + i:04d}" for i in range(count)]


def _started(calls: list[dict[str, Any]]) -> set[str]:
    """Contacts with an attempt under way or done (not waiting, not cancelled before any dial)."""
    return {c["jobId"] for c in calls if c["status"] in ("active", "completed") or c.get("startTime")}


def _wait_for_progress(api: Api, batch_id: str, *, at_least: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        got = api.http.get(f"/v1/batch-calls/{batch_id}")  # 404 until the status service projected it
        if got.status_code == 200:
            body = got.json()
            p = body["progress"]
            if p["active"] + p["completed"] + p["failed"] >= at_least:
                return body
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} made no progress: {body}")


@pytest.fixture
def slow_api(make_api: MakeApi) -> Api:
    return make_api("slow", cps=1, max_concurrent=1)


def test_cancel_mid_batch_drops_the_waiting_calls(slow_api: Api) -> None:
    api = slow_api
    agent = api.create_agent(max_call_seconds=10)
    total = 25
    batch_id = api.start_ok(contacts_csv(numbers(total)), agent, callingWindow=OPEN_WINDOW)
    _wait_for_progress(api, batch_id, at_least=1)
    before = _started(api.calls(batch_id))

    cancelled = api.http.delete(f"/v1/batch-calls/{batch_id}")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["batchId"] == batch_id and body["status"] == "cancelled"
    assert body["details"]["totalCalls"] == total
    assert set(body["details"]) >= {"completedCalls", "failedCalls", "cancelledCalls", "totalCalls"}

    final = api.wait(batch_id, "cancelled")
    final = api.wait(batch_id)  # active calls finish, then the batch is complete
    assert final["status"] == "cancelled" and final["isComplete"] is True
    # The batch document is written before the call documents of the same projection chunk, so the call
    # list may trail the batch by one chunk: read until it converges (bounded), then assert.
    deadline = time.monotonic() + 30
    while True:
        calls = api.calls(batch_id, expect=total)
        if all(c["status"] in TERMINAL_CALL_STATES for c in calls) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(calls) == total
    assert all(c["status"] in TERMINAL_CALL_STATES for c in calls), [c["status"] for c in calls]
    dialed = _started(calls)
    # One call at a time: at most the call in flight and one request already on its way may start after
    # the cancel was answered (the propagation of one event, DESIGN.md invariant 5).
    assert len(dialed - before) <= 2, (sorted(before), sorted(dialed))
    assert sum(1 for c in calls if c["status"] == "cancelled") >= total - len(dialed)
    # A cancelled batch cannot restart.
    resumed = api.http.post(f"/v1/batch-calls/{batch_id}/resume")
    assert resumed.status_code == 409, resumed.text
    assert set(resumed.json()) >= {"error", "message"}


def test_pause_holds_new_calls_and_resume_finishes_the_batch(slow_api: Api) -> None:
    api = slow_api
    agent = api.create_agent(max_call_seconds=10)
    total = 8
    batch_id = api.start_ok(
        contacts_csv(numbers(total, start=2000)),
        agent,
        callingWindow=OPEN_WINDOW,
        smartCallbackConfig=FAST_RETRIES,
    )
    _wait_for_progress(api, batch_id, at_least=1)

    paused = api.http.post(f"/v1/batch-calls/{batch_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    at_pause = _started(api.calls(batch_id))
    api.wait(batch_id, "paused")
    time.sleep(4)  # several call slots' worth at one call a second: none may start now
    held = _started(api.calls(batch_id))
    assert len(held - at_pause) <= 2, (sorted(at_pause), sorted(held))
    assert api.batch(batch_id)["isComplete"] is False

    resumed = api.http.post(f"/v1/batch-calls/{batch_id}/resume")
    assert resumed.status_code == 200, resumed.text
    final = api.wait(batch_id)
    assert final["isComplete"] is True and final["status"] in FINISHED, final["status"]
    calls = api.calls(batch_id, expect=total)
    assert len(calls) == total
    assert all(c["status"] in ("completed", "failed") for c in calls), [c["status"] for c in calls]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_batch_scheduled_later_waits_and_a_near_one_starts_on_time(api: Api, agent_id: str) -> None:
    later = api.start_ok(
        contacts_csv(numbers(3, start=3000)),
        agent_id,
        callingWindow=OPEN_WINDOW,
        scheduledAt=_utc(datetime.now(UTC) + timedelta(hours=2)),
    )
    soon_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    soon = api.start_ok(
        contacts_csv(numbers(3, start=3100)),
        agent_id,
        callingWindow=OPEN_WINDOW,
        scheduledAt=_utc(soon_at),
        smartCallbackConfig=FAST_RETRIES,
    )
    final = api.wait(soon)
    assert final["isComplete"] is True and final["status"] in FINISHED, final["status"]
    starts = [c["startTime"] for c in api.calls(soon, expect=3) if c.get("startTime")]
    assert len(starts) == 3
    assert min(starts) >= int(soon_at.timestamp() * 1000), (starts, soon_at)

    # Still on hold: waiting, never dialed, not failed.
    held = api.batch(later)
    assert held["status"] == "queued" and held["isComplete"] is False
    assert held["progress"]["waiting"] == 3 and held["progress"]["failed"] == 0
    assert all(c["status"] == "waiting" and not c.get("startTime") for c in api.calls(later, expect=3))
    assert api.http.delete(f"/v1/batch-calls/{later}").status_code == 200
    assert api.wait(later)["status"] == "cancelled"


def test_contacts_outside_their_calling_window_stay_waiting(api: Api, agent_id: str) -> None:
    """A window open only three days from now (in the numbers' own zone): nothing is dialed, nothing
    fails, the batch is not complete."""
    local_today = datetime.now(ZoneInfo("America/New_York")).weekday()
    window = json.dumps({"days": [(local_today + 3) % 7], "start": "09:00", "end": "17:00"})
    batch_id = api.start_ok(contacts_csv(numbers(4, start=4000)), agent_id, callingWindow=window)
    # An open-window batch of the same workspace finishes meanwhile: the closed lane holds only itself.
    other = api.start_ok(
        contacts_csv(numbers(2, start=4100)),
        agent_id,
        callingWindow=OPEN_WINDOW,
        smartCallbackConfig=FAST_RETRIES,
    )
    finished = api.wait(other)
    assert finished["isComplete"] is True and finished["status"] in FINISHED, finished["status"]

    held = api.batch(batch_id)
    assert held["isComplete"] is False and held["status"] in ("queued", "processing")
    assert held["progress"]["waiting"] == 4
    assert held["progress"]["failed"] == 0 and held["progress"]["active"] == 0
    calls = api.calls(batch_id, expect=4)
    assert [c["status"] for c in calls] == ["waiting"] * 4
    assert all(not c.get("startTime") for c in calls)
    assert api.http.delete(f"/v1/batch-calls/{batch_id}").status_code == 200
