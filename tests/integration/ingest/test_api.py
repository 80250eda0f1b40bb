"""Validation, template, agents, do-not-call, batch commands and authentication, through the gateway."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from httpx import AsyncClient

from shared.events import CancelBatch, PauseBatch, ResumeBatch
from shared.settings import InfraSettings
from shared.topics import Topic

from .conftest import ROOT, EventLog, MakeTenant, Tenant

pytestmark = pytest.mark.integration


async def test_validate_reports_without_creating_anything(
    http: AsyncClient, tenant: Tenant, agent_id: str
) -> None:
    content = b"phone_number,first_name\n+14155550101,Ann\nnope,Bob\n+1 415 555 0101,Cy\n"
    response = await http.post(
        "/v1/batch-calls/validate",
        headers=tenant.headers,
        files={"file": ("c.csv", content, "text/csv")},
        data={"agentId": agent_id},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalRows"] == 3 and body["valid"] is True
    assert body["counts"] == {"valid": 1, "invalid": 1, "duplicate": 1, "doNotCall": 0}
    assert [(e["row"], e["line"], e["column"], e["code"]) for e in body["errors"]] == [
        (2, 3, "phone_number", "invalid_number"),
        (3, 4, "phone_number", "duplicate"),
    ]
    assert body["preview"] == [{"row": 1, "phone_number": "+14155550101", "variables": {"first_name": "Ann"}}]
    assert any("company" in w and "region" in w for w in body["warnings"])
    api = await http.post(
        "/v1/api/batch-calls/validate", headers=tenant.headers, files={"file": ("c.csv", content, "text/csv")}
    )
    assert api.status_code == 200 and api.json()["warnings"] == []  # no agent named: no variable warnings


async def test_template_lists_the_agent_variables(http: AsyncClient, tenant: Tenant, agent_id: str) -> None:
    response = await http.get(
        "/v1/batch-calls/template", headers=tenant.headers, params={"agentId": agent_id}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["phone_number", "first_name", "last_name", "email", "company", "region"]
    assert len(rows) == 3
    plain = await http.get("/v1/api/batch-calls/template", headers=tenant.headers)
    assert plain.text.splitlines()[0] == "phone_number,first_name,last_name,email"
    missing = await http.get(
        "/v1/batch-calls/template", headers=tenant.headers, params={"agentId": "agent_x"}
    )
    assert missing.status_code == 404


async def test_agents_are_created_listed_and_scoped(
    http: AsyncClient, tenant: Tenant, make_tenant: MakeTenant
) -> None:
    created = await http.post(
        "/v1/agents",
        headers=tenant.headers,
        json={
            "name": "Renewals",
            "prompt": "Hi {first_name}, your {plan} plan renews soon.",
            "callerId": "(415) 555-0199",
            "defaults": {"plan": "current"},
            "missingVariable": "keep",
            "maxCallSeconds": 300,
        },
    )
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["variables"] == ["first_name", "plan"] and agent["callerId"] == "+14155550199"
    fetched = await http.get(f"/v1/agents/{agent['id']}", headers=tenant.headers)
    assert fetched.json() == agent
    listing = await http.get("/v1/agents", headers=tenant.headers, params={"limit": 100})
    assert agent["id"] in [a["id"] for a in listing.json()["agents"]]
    other = await make_tenant()
    assert (await http.get(f"/v1/agents/{agent['id']}", headers=other.headers)).status_code == 404
    bad = await http.post(
        "/v1/agents", headers=tenant.headers, json={"name": "x", "prompt": "y", "defaults": {"a.b": "c"}}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_field"


async def test_do_not_call_entries(http: AsyncClient, tenant: Tenant) -> None:
    first = await http.post(
        "/v1/dnc", headers=tenant.headers, json={"phone_number": "4155550177", "note": "asked"}
    )
    again = await http.post("/v1/dnc", headers=tenant.headers, json={"phone_number": "+1 415 555 0177"})
    assert first.json() == {"phone_number": "+14155550177", "added": True}
    assert again.json() == {"phone_number": "+14155550177", "added": False}
    listing = (await http.get("/v1/dnc", headers=tenant.headers)).json()
    assert [(e["phone_number"], e["note"], e["source"]) for e in listing["entries"]] == [
        ("+14155550177", "asked", "api")
    ]
    assert listing["pagination"]["total"] == 1
    assert (
        await http.post("/v1/dnc", headers=tenant.headers, json={"phone_number": "xyz"})
    ).status_code == 400
    removed = await http.delete("/v1/dnc/+14155550177", headers=tenant.headers)
    assert removed.json() == {"phone_number": "+14155550177", "removed": True}
    assert (await http.delete("/v1/dnc/+14155550177", headers=tenant.headers)).status_code == 404


async def test_pause_resume_cancel_publish_commands(
    http: AsyncClient, tenant: Tenant, agent_id: str, events: EventLog, make_tenant: MakeTenant
) -> None:
    started = await http.post(
        "/v1/batch-calls",
        headers=tenant.headers,
        files={"file": ("c.csv", b"phone_number\n+14155550101\n+14155550102\n", "text/csv")},
        data={"agentId": agent_id},
    )
    batch_id = started.json()["batchId"]
    paused = await http.post(f"/v1/batch-calls/{batch_id}/pause", headers=tenant.headers)
    assert paused.json() == {"batchId": batch_id, "status": "paused", "message": "Batch calls paused"}
    resumed = await http.post(f"/v1/api/batch-calls/{batch_id}/resume", headers=tenant.headers)
    assert resumed.status_code == 200 and resumed.json()["status"] == "processing"
    other = await make_tenant()
    assert (await http.delete(f"/v1/batch-calls/{batch_id}", headers=other.headers)).status_code == 404
    cancelled = await http.delete(f"/v1/batch-calls/{batch_id}", headers=tenant.headers)
    assert cancelled.status_code == 200
    assert cancelled.json() == {
        "batchId": batch_id,
        "status": "cancelled",
        "message": "Batch calls cancelled successfully",
        "details": {"completedCalls": 0, "failedCalls": 0, "cancelledCalls": 0, "totalCalls": 2},
    }
    refused = await http.post(f"/v1/batch-calls/{batch_id}/resume", headers=tenant.headers)
    assert refused.status_code == 409 and refused.json()["error"] == "conflict"
    assert (await http.delete("/v1/batch-calls/batch_unknown", headers=tenant.headers)).status_code == 404

    def commands(messages: list[object]) -> list[type]:
        return [type(m) for m in messages if isinstance(m, PauseBatch | ResumeBatch | CancelBatch)]

    messages = await events.read(batch_id, lambda ms: len(commands(ms)) == 3, topics=(Topic.BATCHES,))
    assert commands(messages) == [PauseBatch, ResumeBatch, CancelBatch]


async def test_authentication_and_request_limits(
    http: AsyncClient, tenant: Tenant, make_tenant: MakeTenant
) -> None:
    assert (await http.get("/v1/agents")).status_code == 401
    wrong = {**tenant.headers, "x-api-key": "bck_0000_nope"}
    assert (await http.get("/v1/agents", headers=wrong)).json()["error"] == "unauthorized"
    other = await make_tenant()
    crossed = {**other.headers, "x-workspace-id": tenant.workspace_id}
    assert (await http.get("/v1/agents", headers=crossed)).status_code == 403
    tight = await make_tenant(requests_per_minute=2)
    codes = [(await http.get("/v1/agents", headers=tight.headers)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = await http.get("/v1/agents", headers=tight.headers)
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"] == "rate_limited"


def test_admin_command_creates_a_workspace_whose_key_works(infra: InfraSettings, gateway: str) -> None:
    env = {**os.environ, "BC_MONGO_DB": infra.mongo_db, "BC_TOPIC_PREFIX": infra.topic_prefix}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "admin",
            "create-workspace",
            "--name",
            "Acme",
            "--region",
            "gb",
            "--cps",
            "5",
            "--max-concurrent",
            "10",
            "--max-records",
            "100000",
            "--rpm",
            "600",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    created = json.loads(out.stdout)
    assert created["default_region"] == "GB" and created["plan"]["calls_per_second"] == 5
    assert created["api_key"].startswith("bck_")
    import httpx

    headers = {"x-api-key": created["api_key"], "x-workspace-id": created["workspace_id"]}
    assert httpx.get(f"{gateway}/v1/agents", headers=headers).status_code == 200
    issued = subprocess.run(
        [sys.executable, "-m", "ingest", "admin", "issue-key", "--workspace-id", created["workspace_id"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    second = json.loads(issued.stdout)["api_key"]
    assert second != created["api_key"]
    replanned = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "admin",
            "set-plan",
            "--workspace-id",
            created["workspace_id"],
            "--rpm",
            "60",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    assert json.loads(replanned.stdout)["plan"] == {**created["plan"], "requests_per_minute": 60}
