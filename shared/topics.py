"""Topic names, partition counts and message keys: the one place that says where a message goes.

Everything a workspace's limits depend on is keyed by workspace id, and those topics share one partition
count, so Kafka's range assignor gives one dispatcher replica the same partitions of each: that replica is
the single writer of the workspace's state (ADR 0003). Call requests are keyed by attempt id so dialers
share them evenly.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum

from shared.events import (
    BatchAccepted,
    BatchCancelled,
    BatchCompleted,
    BatchIngested,
    BatchPaused,
    BatchResumed,
    BatchStarted,
    CallAnswered,
    CallEnded,
    CallRequested,
    CallRinging,
    CallStarted,
    CancelBatch,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    Message,
    PauseBatch,
    ResumeBatch,
    RetryScheduled,
)

WORKSPACE_PARTITIONS = 8
"""Partitions of every workspace-keyed topic; also the most dispatcher replicas that can share work."""

CALL_REQUEST_PARTITIONS = 16
"""Partitions of `call-requests`; also the most dialer replicas KEDA may scale to."""


class Topic(StrEnum):
    BATCHES = "batches"
    CONTACTS = "contacts"
    CALL_REQUESTS = "call-requests"
    CALL_EVENTS = "call-events"
    DISPATCH_EVENTS = "dispatch-events"

    @property
    def partitions(self) -> int:
        return CALL_REQUEST_PARTITIONS if self is Topic.CALL_REQUESTS else WORKSPACE_PARTITIONS

    def name_with(self, prefix: str) -> str:
        """The topic's name on the broker; a prefix separates deployments (and test runs) on one cluster."""
        return f"{prefix}{self.value}"


TOPIC_OF: dict[type[Message], Topic] = {
    BatchAccepted: Topic.BATCHES,
    BatchIngested: Topic.BATCHES,
    CancelBatch: Topic.BATCHES,
    PauseBatch: Topic.BATCHES,
    ResumeBatch: Topic.BATCHES,
    ContactAccepted: Topic.CONTACTS,
    ContactSkipped: Topic.CONTACTS,
    CallRequested: Topic.CALL_REQUESTS,
    CallStarted: Topic.CALL_EVENTS,
    CallRinging: Topic.CALL_EVENTS,
    CallAnswered: Topic.CALL_EVENTS,
    CallEnded: Topic.CALL_EVENTS,
    RetryScheduled: Topic.DISPATCH_EVENTS,
    ContactFinished: Topic.DISPATCH_EVENTS,
    ContactCancelled: Topic.DISPATCH_EVENTS,
    BatchStarted: Topic.DISPATCH_EVENTS,
    BatchPaused: Topic.DISPATCH_EVENTS,
    BatchResumed: Topic.DISPATCH_EVENTS,
    BatchCancelled: Topic.DISPATCH_EVENTS,
    BatchCompleted: Topic.DISPATCH_EVENTS,
}
"""The home topic of each message type. The dispatcher may also publish `ContactSkipped` (a do-not-call entry
found at dial time) to `dispatch-events`; see `topic_for`."""


def topic_for(message: Message) -> Topic:
    return TOPIC_OF[type(message)]


def key_for(message: Message) -> bytes:
    """The partition key: attempt id for call requests, workspace id for everything else."""
    if isinstance(message, CallRequested):
        return message.attempt_id.encode()
    return message.workspace_id.encode()


def main(argv: list[str]) -> int:
    """Print `<name> <partitions>` per topic, for the stack scripts and the Kubernetes topic manifests."""
    prefix = argv[1] if len(argv) > 1 else os.environ.get("BC_TOPIC_PREFIX", "bc.")
    for topic in Topic:
        print(f"{topic.name_with(prefix)} {topic.partitions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
