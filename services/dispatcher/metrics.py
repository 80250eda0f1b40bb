"""The dispatcher's Prometheus metrics (workspace id is the only high-ish cardinality label)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

CALL_REQUESTS = Counter(
    "batchcalls_dispatcher_call_requests_total", "Call requests emitted (attempts started).", ["workspace"]
)
CONTACTS_QUEUED = Counter(
    "batchcalls_dispatcher_contacts_queued_total", "Contacts placed in the waiting queue."
)
OUTCOMES = Counter(
    "batchcalls_dispatcher_outcomes_total", "Attempt outcomes applied, and final contact states.", ["outcome"]
)
LEASES_EXPIRED = Counter(
    "batchcalls_dispatcher_leases_expired_total", "Call slots taken back because no end event came in time."
)
ROUND_SECONDS = Histogram(
    "batchcalls_dispatcher_round_seconds",
    "Time of one dispatch round of one workspace.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OWNED_PARTITIONS = Gauge("batchcalls_dispatcher_owned_partitions", "Partitions this replica owns.")

WAITING_CONTACTS = Gauge(
    "batchcalls_dispatcher_waiting_contacts",
    "Contacts of owned workspaces waiting for their next attempt (fresh in the queue plus retries now due).",
    ["workspace"],
)
DUE_CONTACTS = Gauge(
    "batchcalls_dispatcher_due_contacts",
    "Waiting contacts that could be dialed now: batch running, schedule reached, calling window open.",
    ["workspace"],
)
ACTIVE_CALLS = Gauge(
    "batchcalls_dispatcher_active_calls", "Call slots held (leases) by the workspace.", ["workspace"]
)
CONCURRENCY_LIMIT = Gauge(
    "batchcalls_dispatcher_concurrency_limit", "The workspace plan's maximum concurrent calls.", ["workspace"]
)
DISPATCH_DELAY = Histogram(
    "batchcalls_dispatcher_dispatch_delay_seconds",
    "From contacts picked for dialing to their call requests acknowledged by Kafka (do-not-call re-check, "
    "lease and attempt writes included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

WORKSPACE_GAUGES = (WAITING_CONTACTS, DUE_CONTACTS, ACTIVE_CALLS, CONCURRENCY_LIMIT)


def forget_workspace(workspace_id: str) -> None:
    """A replica that no longer owns a workspace stops reporting it, so sums across replicas stay right."""
    for gauge in WORKSPACE_GAUGES:
        with contextlib.suppress(KeyError):
            gauge.remove(workspace_id)
