"""Every metric the Grafana dashboard and the alert rules query is exported by a running service.

The four services run as subprocesses (conftest.py) and have handled one tiny batch, so labelled metrics
whose values are only known at run time exist too. A family counts as exported when some service's
/metrics has its `# TYPE` line.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.ops.conftest import SERVICES, DrivenBatch, RunningServices
from tests.unit.deploy.promql import alert_queries, dashboard_queries, families

pytestmark = pytest.mark.integration


def exported_families(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if name.endswith("_created"):  # creation timestamps prometheus-client adds
                continue
            names.add(f"{name}_total" if kind == "counter" and not name.endswith("_total") else name)
    return names


async def test_dashboard_and_alert_metrics_are_exported(
    services: RunningServices, batch: DrivenBatch
) -> None:
    exported: dict[str, set[str]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
            response = await client.get(services.url(service, "/metrics"))
            assert response.status_code == 200
            exported[service] = exported_families(response.text)
    everywhere = set().union(*exported.values())
    missing = {}
    for query in [*dashboard_queries(), *alert_queries()]:
        absent = families(query.expr) - everywhere
        if absent:
            missing[query.where] = sorted(absent)
    assert not missing, f"queried but exported by no running service: {missing}"
    # The shared HTTP latency histogram is served by all four.
    for service in SERVICES:
        assert "batchcalls_http_request_duration_seconds" in exported[service], service
