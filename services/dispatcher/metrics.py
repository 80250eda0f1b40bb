"""The dispatcher's Prometheus metrics (workspace id is the only high-ish cardinality label)."""

from __future__ import annotations

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
