"""The `batchcalls` CLI against the running stack, through the gateway, as a user would run it.

Needs the stack up (`make up`; `make test` starts it). The module creates its own workspace (with the e2e
suite's `create_workspace`, i.e. `python -m ingest admin create-workspace`) and agent, so it never touches
anyone else's data.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.stack_client import GATEWAY, Workspace, create_workspace, stack_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("batchcalls"))
# The simulated provider's test numbers (docs/test-numbers.md): each always ends the same way, quickly.
BUSY, UNREACHABLE, INVALID, BLOCKED, ANSWERED = (
    "+12025550103",
    "+12025550104",
    "+12025550105",
    "+12025550106",
    "+12025550100",
)
OPEN_WINDOW = "all 00:00-23:59 UTC"  # tests must not depend on the hour they run at

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return create_workspace("cli", cps=10, max_concurrent=10, rpm=1000)


@pytest.fixture(scope="module")
def cli(workspace: Workspace) -> Cli:
    env = {
        **stack_env(),
        "BATCHCALLS_URL": GATEWAY,
        "BATCHCALLS_WORKSPACE": workspace.workspace_id,
        "BATCHCALLS_API_KEY": workspace.api_key,
        "COLUMNS": "200",
    }

    def run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            capture_output=True,
            text=True,
            env={**env, **(env_extra or {})},
            cwd=ROOT,
            timeout=240,
        )

    return run


@pytest.fixture(scope="module")
def agent_id(cli: Cli) -> str:
    made = cli(
        "agents", "create", "--json", "--name", "e2e reminder", "--prompt", "Hello {first_name} from {clinic}"
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone_number", "first_name"])
        writer.writerows(rows)
    return path


@pytest.fixture
def quick_csv(tmp_path: Path) -> Path:
    """Five dialable rows that end fast, an invalid number and a duplicate: seven rows in all."""
    rows = [
        (BUSY, "Ada"),
        (UNREACHABLE, "Ben"),
        (INVALID, "Cy"),
        (BLOCKED, "Dee"),
        (ANSWERED, "Eve"),
        ("12345", "Fay"),
        (BUSY, "Gus"),
    ]
    return _write_csv(tmp_path / "quick.csv", rows)


def test_agents_are_created_and_listed(cli: Cli, agent_id: str) -> None:
    listed = cli("agents", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    agents = json.loads(listed.stdout)["agents"]
    assert [a["variables"] for a in agents if a["id"] == agent_id] == [["first_name", "clinic"]]
    table = cli("agents", "list")
    assert agent_id in table.stdout


def test_validate_shows_the_bad_rows_by_line_and_exits_3(cli: Cli, agent_id: str, quick_csv: Path) -> None:
    checked = cli("validate", str(quick_csv), "--agent", agent_id)
    assert checked.returncode == 3, checked.stderr
    assert "invalid_number" in checked.stdout and "duplicate" in checked.stdout
    assert "variables with no column: clinic" in checked.stdout
    as_json = json.loads(cli("validate", str(quick_csv), "--json").stdout)
    assert as_json["totalRows"] == 7
    assert {(e["line"], e["code"]) for e in as_json["errors"]} == {(7, "invalid_number"), (8, "duplicate")}


def test_template_lists_the_agent_variables(cli: Cli, agent_id: str) -> None:
    template = cli("template", "--agent", agent_id)
    assert template.returncode == 0, template.stderr
    assert template.stdout.splitlines()[0].split(",")[:2] == ["phone_number", "first_name"]
    assert "clinic" in template.stdout.splitlines()[0]


def test_start_watch_follows_the_batch_to_its_end(
    cli: Cli, agent_id: str, quick_csv: Path, tmp_path: Path
) -> None:
    started = cli(
        "start",
        str(quick_csv),
        "--agent",
        agent_id,
        "--window",
        OPEN_WINDOW,
        "--retry",
        "1",
        "--watch",
        "--json",
    )
    assert started.returncode == 0, started.stderr
    body = json.loads(started.stdout)
    batch_id = body["batchId"]
    assert body["totalCalls"] == 7 and body["status"] == "queued"
    final = body["final"]
    assert final["status"] == "completed" and final["isComplete"] is True
    assert (final["completed"], final["failed"], final["waiting"], final["active"]) == (1, 6, 0, 0)

    failed = json.loads(cli("calls", batch_id, "--status", "failed", "--json").stdout)
    errors = {call["phone_number"]: call["error"] for call in failed["calls"]}
    assert errors[BUSY] == "Number busy"
    assert failed["summary"]["failed"] == 6

    one = cli("calls", batch_id, "--job", f"{batch_id}_r1")
    assert one.returncode == 0 and f"{batch_id}_r1_a1" in one.stdout

    results = tmp_path / "results.csv"
    exported = cli("export", batch_id, "-o", str(results))
    assert exported.returncode == 0, exported.stderr
    with results.open(newline="") as source:
        assert len(list(csv.DictReader(source))) == 7

    shown = cli("status", batch_id)
    assert shown.returncode == 0 and "completed" in shown.stdout


def test_a_scheduled_batch_pauses_resumes_and_cancels(cli: Cli, agent_id: str, quick_csv: Path) -> None:
    started = cli("start", str(quick_csv), "--agent", agent_id, "--at", "+2h", "--json")
    assert started.returncode == 0, started.stderr
    batch_id = json.loads(started.stdout)["batchId"]
    assert cli("pause", batch_id, "--json").returncode == 0
    assert cli("resume", batch_id, "--json").returncode == 0
    cancelled = cli("cancel", batch_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    body = json.loads(cancelled.stdout)
    assert body["status"] == "cancelled" and body["details"]["totalCalls"] == 7
    watched = cli("watch", batch_id, "--json")
    assert watched.returncode == 10, watched.stderr  # a watched batch that ends cancelled
    assert json.loads(watched.stdout)["status"] == "cancelled"
    again = cli("resume", batch_id)
    assert again.returncode == 7 and "cancelled" in again.stderr  # 409: a cancelled batch cannot restart


def test_do_not_call_entries(cli: Cli) -> None:
    number = "+14155550142"
    assert cli("dnc", "add", number, "--note", "asked not to be called").returncode == 0
    listed = json.loads(cli("dnc", "list", "--json").stdout)
    assert number in [entry["phone_number"] for entry in listed["entries"]]
    assert cli("dnc", "remove", number).returncode == 0
    missing = cli("dnc", "remove", number)
    assert missing.returncode == 5 and "not on the do-not-call list" in missing.stderr


def test_errors_are_readable_with_meaningful_exit_codes(cli: Cli) -> None:
    unknown = cli("status", "batch_doesnotexist")
    assert unknown.returncode == 5 and "HTTP 404" in unknown.stderr
    wrong_key = cli("agents", "list", env_extra={"BATCHCALLS_API_KEY": "bck_nope_nope"})
    assert (
        wrong_key.returncode == 4 and "HTTP 401" in wrong_key.stderr and "Traceback" not in wrong_key.stderr
    )
    other = cli("agents", "list", env_extra={"BATCHCALLS_WORKSPACE": "ws_someone_else"})
    assert other.returncode == 4 and "HTTP 403" in other.stderr
    down = cli("agents", "list", env_extra={"BATCHCALLS_URL": "http://127.0.0.1:9"})
    assert down.returncode == 9 and "make up" in down.stderr
