"""Builds deploy/grafana/dashboards/batchcalls.json with Grafana's own typed builders.

The dashboard is code: grafana-foundation-sdk's builders are generated from Grafana's dashboard schema, so
a field or panel option that Grafana does not know cannot be written. Regenerate after editing:

    .venv/bin/python deploy/grafana/build_dashboard.py

`tests/unit/deploy/test_grafana.py` fails while the JSON and this file disagree, and checks every query
parses as PromQL and names only catalogued metrics.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as gm

OUT = Path(__file__).resolve().parent / "dashboards" / "batchcalls.json"
UID = "batchcalls-overview"
DATASOURCE = gm.DataSourceRef(type_val="prometheus", uid="${datasource}")
WS = 'workspace=~"$workspace"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def target(q: Query, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref).datasource(DATASOURCE)


def series(title: str, description: str, unit: str, *queries: Query, width: int = 12) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .min(0)
        .legend(
            gc.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(gc.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )
    for i, q in enumerate(queries):
        panel = panel.with_target(target(q, chr(ord("A") + i)))
    return panel


def single(title: str, description: str, unit: str, q: Query) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(4)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.VALUE)
        .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(target(q, "A"))
    )


def build() -> gd.Dashboard:
    return (
        gd.Dashboard("Batch calls")
        .uid(UID)
        .description("Throughput, outcomes, capacity, lag, errors and latency of the batch calling services.")
        .tags(["batchcalls"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(gm.DashboardCursorSync.CROSSHAIR)
        .with_variable(gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(
            gd.QueryVariable("workspace")
            .label("Workspace")
            .datasource(DATASOURCE)
            .query("label_values(batchcalls_dispatcher_waiting_contacts, workspace)")
            .refresh(gm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_row(gd.Row("Now"))
        .with_panel(
            single(
                "Calls in progress",
                "Calls the dialers hold right now, across replicas.",
                "short",
                Query("sum(batchcalls_dialer_active_calls)", "active"),
            )
        )
        .with_panel(
            single(
                "Waiting contacts",
                "Contacts queued, scheduled or waiting for a retry (selected workspaces).",
                "short",
                Query(f"sum(batchcalls_dispatcher_waiting_contacts{{{WS}}})", "waiting"),
            )
        )
        .with_panel(
            single(
                "Call starts / min",
                "Calls placed per minute over the last 5 minutes (selected workspaces).",
                "short",
                Query(f"sum(rate(batchcalls_dialer_calls_started_total{{{WS}}}[5m])) * 60", "starts"),
            )
        )
        .with_panel(
            single(
                "Dialer replicas",
                "Dialer pods reporting metrics (KEDA scales them on call-requests lag).",
                "short",
                Query("count(batchcalls_dialer_active_calls)", "dialers"),
            )
        )
        .with_row(gd.Row("Throughput and outcomes"))
        .with_panel(
            series(
                "Calls started and ended",
                "Call starts per workspace and call ends per outcome, per second.",
                "reqps",
                Query(
                    f"sum by (workspace) (rate(batchcalls_dialer_calls_started_total{{{WS}}}[{RATE}]))",
                    "started {{workspace}}",
                ),
                Query(
                    f"sum by (outcome) (rate(batchcalls_dialer_calls_ended_total[{RATE}]))",
                    "ended {{outcome}}",
                ),
            )
        )
        .with_panel(
            series(
                "Outcome mix",
                "Share of ended calls by outcome.",
                "percentunit",
                Query(
                    f"sum by (outcome) (rate(batchcalls_dialer_calls_ended_total[{RATE}]))"
                    f" / scalar(sum(rate(batchcalls_dialer_calls_ended_total[{RATE}])))",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            series(
                "Upload rows",
                "CSV rows ingest published, by verdict (accepted, invalid, duplicate, do-not-call).",
                "rowsps",
                Query(
                    f"sum by (verdict) (rate(batchcalls_ingest_rows_total{{{WS}}}[{RATE}]))",
                    "{{verdict}}",
                ),
            )
        )
        .with_panel(
            series(
                "Call requests and claims",
                "Attempts the dispatcher requested; dialer claims by result "
                "(a duplicate is a redelivery that was not dialed twice).",
                "reqps",
                Query(
                    f"sum by (workspace) (rate(batchcalls_dispatcher_call_requests_total{{{WS}}}[{RATE}]))",
                    "requested {{workspace}}",
                ),
                Query(f"sum by (result) (rate(batchcalls_dialer_claims_total[{RATE}]))", "claim {{result}}"),
            )
        )
        .with_row(gd.Row("Capacity"))
        .with_panel(
            series(
                "Active calls vs limit",
                "Concurrent-call slots each workspace holds against its plan's limit.",
                "short",
                Query(
                    f"sum by (workspace) (batchcalls_dispatcher_active_calls{{{WS}}})",
                    "active {{workspace}}",
                ),
                Query(
                    f"max by (workspace) (batchcalls_dispatcher_concurrency_limit{{{WS}}})",
                    "limit {{workspace}}",
                ),
            )
        )
        .with_panel(
            series(
                "Waiting and due contacts",
                "Waiting: queued, scheduled or retry pending. "
                "Due: may be dialed now (window open, not paused).",
                "short",
                Query(
                    f"sum by (workspace) (batchcalls_dispatcher_waiting_contacts{{{WS}}})",
                    "waiting {{workspace}}",
                ),
                Query(
                    f"sum by (workspace) (batchcalls_dispatcher_due_contacts{{{WS}}})",
                    "due {{workspace}}",
                ),
            )
        )
        .with_row(gd.Row("Lag"))
        .with_panel(
            series(
                "Consumer lag",
                "Messages each consumer group has not committed, per topic (max over replicas).",
                "short",
                Query("max by (group, topic) (batchcalls_kafka_consumer_lag)", "{{group}} ← {{topic}}"),
            )
        )
        .with_panel(
            series(
                "Projection lag and dispatch delay",
                "Status projection: age of the newest applied event. "
                "Dispatch delay: due → call requested (p95).",
                "s",
                Query("max(batchcalls_status_projection_lag_seconds)", "projection lag"),
                Query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(batchcalls_dispatcher_dispatch_delay_seconds_bucket[{RATE}])))",
                    "dispatch delay p95",
                ),
            )
        )
        .with_row(gd.Row("Errors and latency"))
        .with_panel(
            series(
                "Errors",
                "HTTP 5xx per service, calls ending in system_error, failed ingestions, "
                "failed webhook deliveries.",
                "reqps",
                Query(
                    "sum by (service) "
                    f'(rate(batchcalls_http_request_duration_seconds_count{{status="5xx"}}[{RATE}]))',
                    "5xx {{service}}",
                ),
                Query(
                    f'sum(rate(batchcalls_dialer_calls_ended_total{{outcome="system_error"}}[{RATE}]))',
                    "system_error calls",
                ),
                Query(f"sum(rate(batchcalls_ingest_failures_total[{RATE}]))", "ingestion failures"),
                Query(
                    f'sum(rate(batchcalls_status_webhook_attempts_total{{result!="delivered"}}[{RATE}]))',
                    "webhook failures",
                ),
            )
        )
        .with_panel(
            series(
                "HTTP latency (p95)",
                "95th percentile request latency per service and route template.",
                "s",
                Query(
                    "histogram_quantile(0.95, sum by (le, service, route) "
                    f"(rate(batchcalls_http_request_duration_seconds_bucket[{RATE}])))",
                    "{{service}} {{route}}",
                ),
            )
        )
        .with_panel(
            series(
                "Call duration",
                "Talk time of ended calls (median and 95th percentile).",
                "s",
                Query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(batchcalls_dialer_call_duration_seconds_bucket[{RATE}])))",
                    "p50",
                ),
                Query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(batchcalls_dialer_call_duration_seconds_bucket[{RATE}])))",
                    "p95",
                ),
            )
        )
        .with_panel(
            series(
                "Webhook deliveries",
                "Webhook delivery attempts by result (delivered, retrying, gave_up).",
                "reqps",
                Query(
                    f"sum by (result) (rate(batchcalls_status_webhook_attempts_total[{RATE}]))",
                    "{{result}}",
                ),
            )
        )
    )


def render() -> str:
    model = build().build()
    for number, panel in enumerate(model.panels or (), start=1):
        panel.id_val = number  # unique ids keep panel links and alert annotations stable
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"build_dashboard: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
