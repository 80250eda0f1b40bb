"""The Grafana dashboard and the Prometheus alert rules: built from code, in Grafana's schema, PromQL that
parses, and only metrics the services declare (docs/metrics.md)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.unit.deploy.manifests import CACHE, FIX, ROOT
from tests.unit.deploy.promql import ALERTS, DASHBOARD, alert_queries, dashboard_queries, families, parse

pytestmark = pytest.mark.unit

RUNBOOK = ROOT / "docs" / "operations.md"
PROMTOOL = CACHE / "bin" / "promtool"


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_dashboard_json_is_what_the_builder_makes() -> None:
    builder = load("deploy/grafana/build_dashboard.py", "build_dashboard")
    assert builder.render() == DASHBOARD.read_text(), "run .venv/bin/python deploy/grafana/build_dashboard.py"


def _normalised(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=JSONEncoder, sort_keys=True))


def test_dashboard_round_trips_through_grafanas_schema_model() -> None:
    """Parsed by the models generated from Grafana's dashboard schema and written back, nothing is lost:
    no field Grafana does not know, no panel type or query kind without a model."""
    board = json.loads(DASHBOARD.read_text())
    model = Dashboard.from_json(board)
    assert _normalised(model) == _normalised(board)
    assert board["uid"] and 8 <= len(board["uid"]) <= 40
    assert {p["type"] for p in board["panels"]} <= {"row", "stat", "timeseries"}


def test_dashboard_layout_is_a_grid_without_overlaps() -> None:
    board = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_dashboard_covers_what_operators_watch() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("calls started", "outcome", "active calls vs limit", "waiting", "lag", "errors", "latency"):
        assert topic in titles, topic


def test_every_query_parses_and_reads_only_catalogued_metrics() -> None:
    tool = load("deploy/tools/metrics_catalogue.py", "metrics_catalogue")
    catalogued = set(re.findall(r"^\| `(batchcalls_\w+)`", tool.CATALOGUE.read_text(), re.M))
    missing: dict[str, set[str]] = {}
    for query in [*dashboard_queries(), *alert_queries()]:
        parse(query.expr)  # raises on a syntax error
        unknown = families(query.expr) - catalogued
        if unknown:
            missing[query.where] = unknown
    assert not missing, (
        f"queries read metrics not in docs/metrics.md (not declared by any service): {missing}"
    )


def test_alert_rules_are_complete_and_point_at_the_runbook() -> None:
    runbook = RUNBOOK.read_text().lower()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h).strip().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    names = [rule["alert"] for group in groups for rule in group["rules"]]
    assert len(names) == len(set(names))
    for required in ("BatchCallsStalledBatches", "BatchCallsLeakingSlots", "BatchCallsConsumerLag"):
        assert required in names
    for group in groups:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            page, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert page == "docs/operations.md" and anchor in anchors, f"{rule['alert']}: runbook #{anchor}"


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    """Prometheus's own checker and rule unit tests (deploy/grafana/alerts/tests.yaml)."""
    if not PROMTOOL.exists() and not shutil.which("promtool"):
        raise AssertionError(f"promtool not found at {PROMTOOL}: {FIX}")
    promtool = str(PROMTOOL if PROMTOOL.exists() else shutil.which("promtool"))
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = ALERTS.parent / "tests.yaml"
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
