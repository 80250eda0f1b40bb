"""A client of the running stack, as a user of the public API would write one: httpx through the gateway.

Shared by the e2e tests, the bad-input corpus test, the schemathesis run and the chaos benchmark. Workspaces
are made with the operator command (`python -m ingest admin create-workspace`), everything else through
the gateway.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("BATCHCALLS_URL", f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}")

# The simulated provider's test numbers (services/dialer/domain/simulation.py, docs/test-numbers.md).
ANSWERED = "+12025550100"
VOICEMAIL = "+12025550101"
NO_ANSWER = "+12025550102"
BUSY = "+12025550103"
UNREACHABLE = "+12025550104"
INVALID = "+12025550105"
BLOCKED = "+12025550106"
OPTED_OUT = "+12025550107"
SYSTEM_ERROR = "+12025550108"
LONG_CALL = "+12025550109"

OPEN_WINDOW = json.dumps({"start": "00:00", "end": "23:59"})
"""Every hour of every day in the recipient's zone (tests must not depend on the hour they run at)."""

FAST_RETRIES = json.dumps(
    {"enabled": True, "maxAttempts": 3, "gaps": [{"days": 0, "hours": 0, "seconds": 1}]}
)
"""The reference's smartCallbackConfig shape, with a one-second ladder so retries happen within a test."""

TERMINAL_CALL_STATES = frozenset({"completed", "failed", "cancelled"})
TERMINAL_BATCH_STATES = frozenset({"completed", "cancelled", "failed"})


def stack_env() -> dict[str, str]:
    """The environment of a process that talks to the stack's own database and topics (not a test
    session's private ones, should an integration fixture have set them in this process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BC_MONGO_DB", "BC_TOPIC_PREFIX")}
    env["PYTHONUNBUFFERED"] = "1"
    if os.environ.get("E2E_MONGO_DB"):  # the stack runs on another database (development runs)
        env["BC_MONGO_DB"] = os.environ["E2E_MONGO_DB"]
    env.setdefault("BC_LOG_LEVEL", "WARNING")
    return env


@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    api_key: str
    plan: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "x-workspace-id": self.workspace_id}


def create_workspace(
    label: str,
    *,
    cps: float = 20,
    max_concurrent: int = 20,
    rpm: int = 100_000,
    max_records: int | None = None,
) -> Workspace:
    """A fresh workspace with its first API key, made with the operator command."""
    workspace_id = f"ws_{label}_{uuid.uuid4().hex[:8]}"
    args = [sys.executable, "-m", "ingest", "admin", "create-workspace", "--name", f"e2e {label}"]
    args += ["--workspace-id", workspace_id, "--cps", str(cps), "--max-concurrent", str(max_concurrent)]
    args += ["--rpm", str(rpm)]
    if max_records is not None:
        args += ["--max-records", str(max_records)]
    made = subprocess.run(args, capture_output=True, text=True, env=stack_env(), cwd=ROOT, timeout=180)
    if made.returncode != 0:
        raise RuntimeError(f"create-workspace failed: {made.stderr.strip()}")
    body = json.loads(made.stdout)
    return Workspace(body["workspace_id"], body["api_key"], body["plan"])


def contacts_csv(rows: Iterable[Mapping[str, str] | str], columns: Iterable[str] | None = None) -> bytes:
    """A CSV with `phone_number` first; a row is a number or a mapping of cells."""
    materialised = [{"phone_number": r} if isinstance(r, str) else dict(r) for r in rows]
    names = list(columns) if columns is not None else ["phone_number", "first_name"]
    for row in materialised:
        for key in row:
            if key not in names:
                names.append(key)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(materialised, start=1):
        writer.writerow({"first_name": f"Person{i}", **row} if "first_name" in names else row)
    return out.getvalue().encode()


class Api:
    """The public API of one workspace through the gateway (or any base URL)."""

    def __init__(self, workspace: Workspace, base_url: str = GATEWAY, *, timeout: float = 60.0) -> None:
        self.workspace = workspace
        self.http = httpx.Client(base_url=base_url, headers=workspace.headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # --- ingest ------------------------------------------------------------------------------------

    def create_agent(self, *, prompt: str = "Hello {first_name}", max_call_seconds: int = 60) -> str:
        made = self.http.post(
            "/v1/agents",
            json={"name": "e2e agent", "prompt": prompt, "maxCallSeconds": max_call_seconds},
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def start(
        self,
        csv_bytes: bytes,
        agent_id: str,
        *,
        prefix: str = "/v1/batch-calls",
        filename: str = "contacts.csv",
        **fields: str,
    ) -> httpx.Response:
        data = {"agentId": agent_id, **fields}
        return self.http.post(prefix, files={"file": (filename, csv_bytes, "text/csv")}, data=data)

    def start_ok(self, csv_bytes: bytes, agent_id: str, **fields: str) -> str:
        started = self.start(csv_bytes, agent_id, **fields)
        assert started.status_code == 200, started.text
        return str(started.json()["batchId"])

    # --- status ------------------------------------------------------------------------------------

    def batch(self, batch_id: str, prefix: str = "/v1/batch-calls") -> dict[str, Any]:
        got = self.http.get(f"{prefix}/{batch_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def calls(
        self, batch_id: str, *, status: str = "all", expect: int | None = None, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Every call of the batch, following the pagination. With `expect`, polls until that many are
        listed: the status service writes a batch's counts before its call documents (crash-safe order),
        so for a moment a finished batch can list fewer calls than it counts."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self._calls_once(batch_id, status)
            if expect is None or len(calls) >= expect or time.monotonic() > deadline:
                return calls
            time.sleep(0.5)

    def _calls_once(self, batch_id: str, status: str) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        page = 1
        while True:
            got = self.http.get(
                f"/v1/batch-calls/{batch_id}/calls", params={"page": page, "limit": 100, "status": status}
            )
            assert got.status_code == 200, got.text
            body = got.json()
            calls.extend(body["calls"])
            if not body["pagination"]["hasNext"]:
                return calls
            page += 1

    def job(self, batch_id: str, job_id: str) -> dict[str, Any]:
        got = self.http.get(f"/v1/batch-calls/{batch_id}/calls/{job_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def batch_ids(self) -> set[str]:
        """Every batch of the workspace the list endpoint shows."""
        ids: set[str] = set()
        page = 1
        while True:
            got = self.http.get("/v1/batch-calls", params={"page": page, "limit": 100})
            assert got.status_code == 200, got.text
            body = got.json()
            items = body.get("batches", body.get("items", []))
            ids.update(str(b.get("id") or b.get("batchId")) for b in items)
            if not body.get("pagination", {}).get("hasNext"):
                return ids
            page += 1

    def wait(
        self,
        batch_id: str,
        until: str = "terminal",
        *,
        timeout: float = 180.0,
        interval: float = 0.5,
    ) -> dict[str, Any]:
        """Polls the batch until `until` holds: "terminal" (isComplete), or a batch status name.
        A deadline (not a timed assertion): past it the last state is reported, to show what is stuck."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            got = self.http.get(f"/v1/batch-calls/{batch_id}")
            if got.status_code == 200:
                last = got.json()
                if until == "terminal" and last.get("isComplete"):
                    return last
                if until != "terminal" and last.get("status") == until:
                    return last
            time.sleep(interval)
        raise AssertionError(f"batch {batch_id} did not reach {until!r} in {timeout}s; last: {last}")
