"""The commands end to end against the fake API: output, --json and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from batchcalls_cli.app import run
from batchcalls_cli.exit_codes import ExitCode
from tests.unit.cli.fake_api import AGENT, FakeApi, status_body

pytestmark = pytest.mark.unit


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text("phone_number,first_name\n+14155550100,Ada\n12,Bob\n+14155550101,Cy\n")
    return path


def test_status_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    body = {"id": "batch_1", "status": "processing", "totalCalls": 2, "progress": {"waiting": 2, "total": 2}}
    api.responses[("GET", "/v1/batch-calls/batch_1")] = httpx.Response(200, json=body)
    assert run(["status", "batch_1", "--json"], api.transport()) == 0
    assert json.loads(capsys.readouterr().out) == body


def test_status_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    body = {
        "id": "batch_1",
        "status": "processing",
        "isComplete": False,
        "totalCalls": 4,
        "progress": {
            "waiting": 1,
            "active": 1,
            "completed": 1,
            "failed": 1,
            "total": 4,
            "recent_calls": [
                {
                    "jobId": "batch_1_r2",
                    "status": "failed",
                    "phone_number": "+14155550101",
                    "error": "Number busy",
                }
            ],
        },
    }
    api.responses[("GET", "/v1/batch-calls/batch_1")] = httpx.Response(200, json=body)
    assert run(["status", "batch_1"], api.transport()) == 0
    out = capsys.readouterr().out
    assert "batch_1" in out and "Number busy" in out and "25%" in out


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (429, ExitCode.RATE_LIMITED),
        (400, ExitCode.REJECTED),
        (413, ExitCode.REJECTED),
        (500, ExitCode.SERVER_ERROR),
    ],
)
def test_api_errors_are_one_readable_line_and_a_meaningful_exit_code(
    status: int, code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    api.responses[("DELETE", "/v1/batch-calls/batch_1")] = httpx.Response(
        status, json={"error": "some_error", "message": "the reason in words"}
    )
    assert run(["cancel", "batch_1"], api.transport()) == code
    err = capsys.readouterr().err
    assert "the reason in words" in err and f"HTTP {status}" in err and "Traceback" not in err


def test_errors_as_json_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    assert (
        run(["--api-key", "bck_nope_nope", "status", "batch_1", "--json"], api.transport()) == ExitCode.AUTH
    )
    assert json.loads(capsys.readouterr().err) == {
        "error": "unauthorized",
        "message": "invalid API key [unauthorized, HTTP 401] "
        "(set BATCHCALLS_API_KEY and BATCHCALLS_WORKSPACE, "
        "or pass --api-key and --workspace)",
        "status": 401,
    }


def test_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert run(["agents", "list"], httpx.MockTransport(refuse)) == ExitCode.UNREACHABLE
    assert "make up" in capsys.readouterr().err


def test_validate_shows_errors_by_line_and_exits_3(csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    assert run(["validate", str(csv), "--agent", "agent_1"], api.transport()) == ExitCode.INVALID_ROWS
    out = capsys.readouterr().out
    assert "invalid_number" in out and "not a phone number" in out
    assert "variables covered: first_name" in out and "variables with no column: company" in out
    assert api.uploads[0]["agentId"] == "agent_1"


def test_validate_of_a_clean_file_exits_0(csv: Path) -> None:
    api = FakeApi()
    clean = {
        "valid": True,
        "totalRows": 2,
        "counts": {"valid": 2, "invalid": 0, "duplicate": 0, "doNotCall": 0},
        "errors": [],
        "preview": [],
        "warnings": [],
    }
    api.responses[("POST", "/v1/batch-calls/validate")] = httpx.Response(200, json=clean)
    assert run(["validate", str(csv)], api.transport()) == 0


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert run(["validate", str(tmp_path / "nope.csv")], FakeApi().transport()) == ExitCode.USAGE


def test_an_unknown_option_is_a_usage_error() -> None:
    assert run(["status", "--frobnicate"], FakeApi().transport()) == ExitCode.USAGE


def test_start_sends_the_reference_fields_and_ours(csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    argv = [
        "start",
        str(csv),
        "--agent",
        "agent_1",
        "--at",
        "2030-01-01T09:00:00Z",
        "--window",
        "all 00:00-23:59 UTC",
        "--retry",
        "3:30s,2m",
        "--name",
        "spring",
        "--json",
    ]
    assert run(argv, api.transport()) == 0
    assert json.loads(capsys.readouterr().out)["batchId"] == "batch_abc"
    fields = api.uploads[0]
    assert fields["agentId"] == "agent_1" and fields["scheduledAt"] == "2030-01-01T09:00:00Z"
    assert json.loads(fields["callingWindow"]) == {
        "days": [0, 1, 2, 3, 4, 5, 6],
        "start": "00:00",
        "end": "23:59",
        "timezone": "UTC",
    }
    assert json.loads(fields["retryPolicy"]) == {
        "retryVoicemail": False,
        "maxAttempts": 3,
        "gapsSeconds": [30, 120],
    }
    assert fields["name"] == "spring"


def test_a_bad_window_is_refused_before_uploading(csv: Path) -> None:
    api = FakeApi()
    assert (
        run(["start", str(csv), "--agent", "a", "--window", "nine to five"], api.transport())
        == ExitCode.USAGE
    )
    assert api.requests == []


def test_start_watch_follows_until_completed(csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(
        statuses=[
            status_body("batch_abc", "queued", 3, waiting=3),
            status_body("batch_abc", "processing", 3, waiting=1, active=1, completed=1),
            status_body("batch_abc", "completed", 3, completed=2, failed=1),
        ]
    )
    assert run(["start", str(csv), "--agent", "agent_1", "--watch", "--poll", "0.01"], api.transport()) == 0
    out = capsys.readouterr().out
    assert "batch_abc completed: 2 completed, 1 failed, 0 cancelled of 3" in out


def test_watch_of_a_cancelled_batch_exits_10() -> None:
    api = FakeApi(statuses=[status_body("batch_abc", "cancelled", 3, completed=1, cancelled=2)])
    assert run(["watch", "batch_abc"], api.transport()) == ExitCode.BATCH_NOT_COMPLETED


def test_calls_filter_and_one_call_with_attempts(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    page = {
        "calls": [
            {
                "jobId": "batch_1_r1",
                "status": "failed",
                "phone_number": "+14155550100",
                "startTime": 1_767_225_600_000,
                "endTime": 1_767_225_660_000,
                "duration": 0,
                "error": "Number busy",
                "metadata": {"first_name": "Ada"},
            }
        ],
        "pagination": {
            "page": 1,
            "limit": 20,
            "total": 1,
            "totalPages": 1,
            "hasNext": False,
            "hasPrev": False,
        },
        "summary": {"total": 1, "waiting": 0, "active": 0, "completed": 0, "failed": 1},
    }
    api.responses[("GET", "/v1/batch-calls/batch_1/calls")] = httpx.Response(200, json=page)
    assert run(["calls", "batch_1", "--status", "failed"], api.transport()) == 0
    assert "Number busy" in capsys.readouterr().out
    assert api.requests[-1].url.params["status"] == "failed"
    one = {
        **page["calls"][0],
        "attempts": 1,
        "batchId": "batch_1",
        "history": [{"attempt": 1, "attemptId": "batch_1_r1_a1", "outcome": "busy", "providerCode": "486"}],
    }
    api.responses[("GET", "/v1/batch-calls/batch_1/calls/batch_1_r1")] = httpx.Response(200, json=one)
    assert run(["calls", "batch_1", "--job", "batch_1_r1"], api.transport()) == 0
    assert "batch_1_r1_a1" in capsys.readouterr().out


def test_calls_refuses_an_unknown_status() -> None:
    assert run(["calls", "batch_1", "--status", "busy"], FakeApi().transport()) == ExitCode.USAGE


def test_export_writes_the_file(tmp_path: Path) -> None:
    api = FakeApi()
    api.responses[("GET", "/v1/batch-calls/batch_1/export")] = httpx.Response(
        200, content=b"jobId,status\nbatch_1_r1,completed\nbatch_1_r2,failed\n"
    )
    target = tmp_path / "results.csv"
    assert run(["export", "batch_1", "-o", str(target)], api.transport()) == 0
    assert target.read_text().count("\n") == 3
    assert not (tmp_path / "results.csv.part").exists()


def test_agents_create_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    agent = AGENT
    api.responses[("POST", "/v1/agents")] = httpx.Response(201, json=agent)
    api.responses[("GET", "/v1/agents")] = httpx.Response(200, json={"agents": [agent], "pagination": {}})
    argv = [
        "agents",
        "create",
        "--name",
        "Reminder",
        "--prompt",
        "Hi {first_name}",
        "--default",
        "first_name=there",
    ]
    assert run(argv, api.transport()) == 0
    sent = json.loads(api.requests[-1].content)
    assert sent == {"name": "Reminder", "prompt": "Hi {first_name}", "defaults": {"first_name": "there"}}
    assert run(["agents", "list"], api.transport()) == 0
    assert "agent_1" in capsys.readouterr().out


def test_dnc_add_list_remove(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    entry = {"phone_number": "+14155550100", "source": "api", "note": "asked", "createdAt": None}
    api.responses[("POST", "/v1/dnc")] = httpx.Response(
        200, json={"phone_number": "+14155550100", "added": True}
    )
    api.responses[("GET", "/v1/dnc")] = httpx.Response(200, json={"entries": [entry]})
    api.responses[("DELETE", "/v1/dnc/+14155550100")] = httpx.Response(
        200, json={"phone_number": "+14155550100", "removed": True}
    )
    assert run(["dnc", "add", "+14155550100", "--note", "asked"], api.transport()) == 0
    assert json.loads(api.requests[-1].content) == {"phone_number": "+14155550100", "note": "asked"}
    assert run(["dnc", "list"], api.transport()) == 0
    assert "+14155550100" in capsys.readouterr().out
    assert run(["dnc", "remove", "+14155550100"], api.transport()) == 0


def test_template_to_a_file(tmp_path: Path) -> None:
    api = FakeApi()
    api.responses[("GET", "/v1/batch-calls/template")] = httpx.Response(
        200, content=b"phone_number,first_name\n+14155550100,Ada\n"
    )
    target = tmp_path / "template.csv"
    assert run(["template", "-o", str(target)], api.transport()) == 0
    assert target.read_text().startswith("phone_number")


def test_validate_a_file_where_nothing_can_be_dialed_exits_3(csv: Path) -> None:
    api = FakeApi()
    none = {
        "valid": False,
        "totalRows": 1,
        "counts": {"valid": 0, "invalid": 1, "duplicate": 0, "doNotCall": 0},
        "errors": [],
        "warnings": ["no row has a callable number"],
    }
    api.responses[("POST", "/v1/batch-calls/validate")] = httpx.Response(200, json=none)
    assert run(["validate", str(csv)], api.transport()) == ExitCode.INVALID_ROWS
