"""The PromQL the dashboard and the alert rules run, and the metric families each query reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "batchcalls.json"
ALERTS = ROOT / "deploy" / "grafana" / "alerts" / "batchcalls-alerts.yaml"
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")
# Grafana's built-in variables, replaced by values before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


@dataclass(frozen=True)
class PromQuery:
    where: str
    expr: str


def dashboard_queries() -> Iterator[PromQuery]:
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            yield PromQuery(f"panel {panel['title']!r} {t['refId']}", t["expr"])
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"])
            assert match, f"variable {variable['name']}: only label_values(metric, label) is used"
            yield PromQuery(f"variable {variable['name']}", match.group(1))


def alert_queries() -> Iterator[PromQuery]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield PromQuery(f"alert {rule.get('alert') or rule.get('record')}", rule["expr"])


def as_prometheus_sees_it(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$(\w+)", ".*", expr)  # dashboard variables ($workspace) become a regex matching all


def parse(expr: str) -> Any:
    return promql_parser.parse(as_prometheus_sees_it(expr))


def selectors(node: Any) -> Iterator[str]:
    """Names of every vector selector in a parsed expression."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        return
    for attribute in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from selectors(child)
    for arg in getattr(node, "args", None) or ():
        yield from selectors(arg)


def families(expr: str) -> set[str]:
    """Metric families a query reads (`x_bucket` → histogram `x`; counters keep `_total`)."""
    return {HISTOGRAM_SERIES.sub("", name) for name in selectors(parse(expr))}
