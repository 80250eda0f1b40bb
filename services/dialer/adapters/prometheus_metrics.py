"""The dialer's Prometheus metrics (names prefixed `batchcalls_dialer_`, bounded labels)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from dialer.ports import ClaimStatus
from shared.outcomes import Outcome

CALLS_STARTED = Counter("batchcalls_dialer_calls_started_total", "Calls this dialer placed.", ["workspace"])
CALLS_ENDED = Counter("batchcalls_dialer_calls_ended_total", "Calls that ended, by outcome.", ["outcome"])
ACTIVE_CALLS = Gauge("batchcalls_dialer_active_calls", "Calls in progress in this dialer.")
CALL_DURATION = Histogram(
    "batchcalls_dialer_call_duration_seconds",
    "Talk time of ended calls (0 for calls never answered).",
    buckets=(0, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600),
)
CLAIMS = Counter("batchcalls_dialer_claims_total", "Call requests by claim result.", ["result"])


class PrometheusCallMetrics:
    """`CallMetrics` recorded in the process's default Prometheus registry."""

    def __init__(self) -> None:
        # Label lookups cost more than the increments at thousands of calls a second: keep the children.
        self._started: dict[str, Any] = {}
        self._ended = {outcome: CALLS_ENDED.labels(outcome.value) for outcome in Outcome}
        self._claims = {status: CLAIMS.labels(status.value) for status in ClaimStatus}

    def call_started(self, workspace_id: str) -> None:
        child = self._started.get(workspace_id)
        if child is None:
            child = self._started[workspace_id] = CALLS_STARTED.labels(workspace_id)
        child.inc()

    def call_ended(self, outcome: Outcome, duration_seconds: float) -> None:
        self._ended[outcome].inc()
        CALL_DURATION.observe(duration_seconds)

    def claimed(self, status: ClaimStatus) -> None:
        self._claims[status].inc()

    def active(self, delta: int) -> None:
        ACTIVE_CALLS.inc(delta)
