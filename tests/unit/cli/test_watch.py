"""Following a batch: from the event stream, and by polling when there is none."""

from __future__ import annotations

import httpx
import pytest

from batchcalls_cli.client import ApiFailure, BatchCallsClient, Connection
from batchcalls_cli.watch import BatchFollower
from tests.unit.cli.fake_api import KEY, WORKSPACE, FakeApi, sse, status_body

pytestmark = pytest.mark.unit


def follow(api: FakeApi, use_stream: bool = True) -> list[tuple[str, int, int]]:
    client = BatchCallsClient(Connection("http://api.test", KEY, WORKSPACE), api.transport())
    follower = BatchFollower(
        client, "batch_1", poll_seconds=0.01, use_stream=use_stream, sleep=lambda _s: None
    )
    return [(p.status, p.completed, p.failed) for p in follower]


def test_polling_until_completed() -> None:
    api = FakeApi(
        statuses=[
            status_body("batch_1", "queued", 3, waiting=3),
            status_body("batch_1", "processing", 3, waiting=2, active=1),
            status_body("batch_1", "processing", 3, waiting=2, active=1),
            status_body("batch_1", "processing", 3, completed=2, active=1),
            status_body("batch_1", "completed", 3, completed=2, failed=1),
        ]
    )
    seen = follow(api, use_stream=False)
    assert seen == [("queued", 0, 0), ("processing", 0, 0), ("processing", 2, 0), ("completed", 2, 1)]


def test_progress_events_from_the_stream_then_the_final_status() -> None:
    api = FakeApi(
        statuses=[
            status_body("batch_1", "processing", 3, waiting=3),
            status_body("batch_1", "completed", 3, completed=3),
        ],
        stream=[
            *sse("progress", {"status": "processing", "waiting": 1, "active": 1, "completed": 1}, "1"),
            *sse("call.ended", {"jobId": "batch_1_r2"}, "2"),
            *sse("batch.completed", {"type": "batch.completed"}, "3"),
        ],
    )
    seen = follow(api)
    assert seen[0] == ("processing", 0, 0)
    assert ("processing", 1, 0) in seen
    assert seen[-1] == ("completed", 3, 0)


def test_a_missing_stream_falls_back_to_polling() -> None:
    api = FakeApi(
        statuses=[
            status_body("batch_1", "processing", 2, waiting=2),
            status_body("batch_1", "cancelled", 2, completed=1, cancelled=1),
        ],
        stream=None,
    )
    assert follow(api)[-1] == ("cancelled", 1, 0)


def test_an_already_finished_batch_yields_once() -> None:
    api = FakeApi(statuses=[status_body("batch_1", "completed", 1, completed=1)])
    assert follow(api) == [("completed", 1, 0)]


def test_a_rate_limited_status_read_waits_and_retries() -> None:
    api = FakeApi(statuses=[status_body("batch_1", "completed", 1, completed=1)])
    limited = [
        httpx.Response(429, headers={"retry-after": "3"}, json={"error": "rate_limited", "message": "x"})
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        return limited.pop() if limited else api.handle(request)

    client = BatchCallsClient(Connection("http://api.test", KEY, WORKSPACE), httpx.MockTransport(handle))
    slept: list[float] = []
    follower = BatchFollower(client, "batch_1", poll_seconds=0.01, use_stream=False, sleep=slept.append)
    assert [p.status for p in follower] == ["completed"]
    assert slept == [3.0]


def test_a_batch_not_yet_in_the_read_model_is_waited_for() -> None:
    api = FakeApi(statuses=[status_body("batch_1", "completed", 1, completed=1)])
    missing = [httpx.Response(404, json={"error": "not_found", "message": "batch batch_1 not found"})] * 2

    def handle(request: httpx.Request) -> httpx.Response:
        return missing.pop() if missing else api.handle(request)

    client = BatchCallsClient(Connection("http://api.test", KEY, WORKSPACE), httpx.MockTransport(handle))
    follower = BatchFollower(client, "batch_1", poll_seconds=0.01, use_stream=False, sleep=lambda _s: None)
    assert [p.status for p in follower] == ["completed"]


def test_a_batch_that_never_appears_is_not_found() -> None:
    api = FakeApi(statuses=[])  # every status read answers 404
    client = BatchCallsClient(Connection("http://api.test", KEY, WORKSPACE), api.transport())
    ticks = iter(range(1000))
    follower = BatchFollower(
        client,
        "batch_1",
        use_stream=False,
        sleep=lambda _s: None,
        clock=lambda: float(next(ticks)),
        appear_within_seconds=5,
    )
    with pytest.raises(ApiFailure) as caught:
        list(follower)
    assert caught.value.status == 404


def test_progress_never_goes_back() -> None:
    api = FakeApi(
        statuses=[
            status_body("batch_1", "processing", 4, completed=2, waiting=2),
            status_body("batch_1", "processing", 4, completed=1, waiting=3),  # an older read, out of order
            status_body("batch_1", "completed", 4, completed=4),
        ]
    )
    assert follow(api, use_stream=False) == [("processing", 2, 0), ("completed", 4, 0)]
