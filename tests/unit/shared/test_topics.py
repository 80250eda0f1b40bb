from __future__ import annotations

import pytest

from shared.events import message_types
from shared.topics import TOPIC_OF, WORKSPACE_PARTITIONS, Topic, key_for, main
from tests.unit.contracts.examples import EXAMPLES

pytestmark = pytest.mark.unit


def test_every_message_type_has_a_home_topic() -> None:
    assert set(TOPIC_OF) == set(message_types().values())


def test_workspace_keyed_topics_share_one_partition_count() -> None:
    # The dispatcher's single-writer rule (ADR 0003) depends on it.
    for topic in (Topic.BATCHES, Topic.CONTACTS, Topic.CALL_EVENTS, Topic.DISPATCH_EVENTS):
        assert topic.partitions == WORKSPACE_PARTITIONS


def test_call_requests_are_keyed_by_attempt_everything_else_by_workspace() -> None:
    for kind, message in EXAMPLES.items():
        expected = message.attempt_id if kind == "call.requested" else message.workspace_id  # type: ignore[attr-defined]
        assert key_for(message) == expected.encode()


def test_topic_listing_for_the_stack_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "x."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "x.call-requests 16" in lines and len(lines) == len(Topic)
