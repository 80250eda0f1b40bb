"""Reading progress from every shape the API answers with."""

from __future__ import annotations

import pytest

from batchcalls_cli.progress import BatchProgress
from tests.unit.cli.fake_api import status_body

pytestmark = pytest.mark.unit


def test_flat_status() -> None:
    progress = BatchProgress.from_body(
        status_body("batch_1", "processing", 10, completed=3, failed=1, active=1)
    )
    assert progress is not None
    assert (progress.batch_id, progress.total, progress.done, progress.finished) == ("batch_1", 10, 4, False)


def test_nested_reference_status() -> None:
    body = {
        "id": "batch_1",
        "status": "completed",
        "isComplete": True,
        "totalCalls": 2,
        "progress": {"waiting": 0, "active": 0, "completed": 1, "failed": 1, "total": 2},
        "timestamp": 1,
    }
    progress = BatchProgress.from_body(body)
    assert progress is not None
    assert progress.finished and progress.completed == 1 and progress.failed == 1 and progress.total == 2


def test_a_body_without_counts_is_not_progress() -> None:
    assert BatchProgress.from_body({"type": "call.started", "jobId": "batch_1_r1"}) is None
