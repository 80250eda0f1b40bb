"""The metric catalogue matches what the services declare, and no label can take unbounded values."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.unit.deploy.manifests import ROOT

pytestmark = pytest.mark.unit

# Label names that would carry per-call or per-person values: one time series per phone number or batch.
UNBOUNDED = re.compile(
    r"phone|number|e164|msisdn|caller|callee|batch|contact|job|attempt|call_?id|trace|span|request_?id|"
    r"user|email|url|uri|path|host|ip|address|name|message|error_?text|variable"
)


def catalogue_tool() -> ModuleType:
    path = ROOT / "deploy" / "tools" / "metrics_catalogue.py"
    spec = importlib.util.spec_from_file_location("metrics_catalogue", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["metrics_catalogue"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def declared() -> list[Any]:
    tool = catalogue_tool()
    metrics, failures = tool.catalogue()
    assert not failures, f"service modules that do not import: {failures}"
    return list(metrics)


def test_catalogue_lists_exactly_the_declared_metrics(declared: list[Any]) -> None:
    tool = catalogue_tool()
    current = tool.CATALOGUE.read_text()
    assert tool.rendered_document(current, declared) == current, (
        "docs/metrics.md differs from the code: "
        "run .venv/bin/python deploy/tools/metrics_catalogue.py --write"
    )


def test_every_metric_is_prefixed_typed_and_explained(declared: list[Any]) -> None:
    for m in declared:
        assert m.name.startswith("batchcalls_"), m.name
        assert m.help.strip(), f"{m.name}: a HELP text says what it means"
        if m.kind == "counter":
            assert m.name.endswith("_total")
        if m.kind == "histogram" and "duration" in m.name:
            assert m.name.endswith("_seconds"), f"{m.name}: durations in seconds"


def test_label_cardinality_is_bounded(declared: list[Any]) -> None:
    allowed = {"route"}  # a route *template* (shared/http.py), never the raw path
    offending = [
        (m.name, label)
        for m in declared
        for label in m.labels
        if label not in allowed and UNBOUNDED.search(label)
    ]
    assert not offending, f"labels with unbounded values (put them in logs or traces): {offending}"


async def test_http_route_label_is_a_template() -> None:
    """The HTTP latency metric labels requests by their route template, never the raw path."""
    import httpx
    from fastapi import FastAPI
    from prometheus_client import REGISTRY

    from shared.http import install_common_routes

    app = FastAPI()
    install_common_routes(app, "cardinality-probe", [])

    @app.get("/v1/batch-calls/{batch_id}")
    async def one(batch_id: str) -> dict[str, str]:
        return {"id": batch_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for i in range(3):
            await client.get(f"/v1/batch-calls/batch_{i:04x}")
        await client.get("/no/such/path/+15551234567")
    routes = {
        s.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "batchcalls_http_request_duration_seconds"
        for s in family.samples
        if s.labels.get("service") == "cardinality-probe"
    }
    assert routes == {"/v1/batch-calls/{batch_id}", "unmatched"}
