"""The call document: public status rules, and order tolerance of the projection (property-tested)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events import (
    CallEnded,
    CallStarted,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    RetryScheduled,
)
from shared.outcomes import Outcome, PublicCallStatus, SkipReason
from status.domain.calls import CallView, apply_call_event, is_call_event, row_number_of
from tests.unit.status.scenarios import T0, history

pytestmark = pytest.mark.unit

BASE = {"workspace_id": "ws", "correlation_id": "batch_1", "batch_id": "batch_1", "contact_id": "batch_1_r3"}


def _fold(events: list[object]) -> CallView | None:
    view: CallView | None = None
    for event in events:
        assert is_call_event(event)
        view = apply_call_event(view, event)
    return view


def _contact_events(seed: int) -> dict[str, list[object]]:
    by_contact: dict[str, list[object]] = {}
    for message in history(seed, rows=8).messages:
        if is_call_event(message):
            by_contact.setdefault(message.contact_id, []).append(message)
    return by_contact


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle=st.randoms(use_true_random=False), dup=st.floats(0, 0.5))
def test_any_order_with_duplicates_gives_the_same_document(
    seed: int, shuffle: random.Random, dup: float
) -> None:
    for events in _contact_events(seed).values():
        expected = _fold(events)
        mixed = list(events) + [e for e in events if shuffle.random() < dup]
        shuffle.shuffle(mixed)
        assert _fold(mixed) == expected


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_applying_an_event_twice_returns_the_same_object(seed: int) -> None:
    for events in _contact_events(seed).values():
        view = _fold(events)
        for event in events:
            assert is_call_event(event)
            assert apply_call_event(view, event) is view


def test_accepted_contact_is_waiting_with_its_row() -> None:
    view = apply_call_event(
        None,
        ContactAccepted(
            **BASE, occurred_at=T0, row_number=3, phone_number="+15550100003", variables={"first_name": "Jo"}
        ),
    )
    assert view.status is PublicCallStatus.WAITING
    assert (view.row_number, view.phone_number, view.variables) == (
        3,
        "+15550100003",
        (("first_name", "Jo"),),
    )
    assert view.error is None


def test_a_busy_attempt_with_a_retry_is_waiting_then_failed_with_its_error_text() -> None:
    started = CallStarted(
        **BASE,
        occurred_at=T0,
        attempt_id="batch_1_r3_a1",
        attempt_number=1,
        phone_number="+1555",
        provider="sim",
    )
    view = apply_call_event(None, started)
    assert view.status is PublicCallStatus.ACTIVE
    ended = CallEnded(
        **BASE,
        occurred_at=T0 + timedelta(seconds=20),
        attempt_id="batch_1_r3_a1",
        attempt_number=1,
        outcome=Outcome.BUSY,
        started_at=T0,
        duration_seconds=0,
        billable=False,
        provider="sim",
        provider_code="486",
    )
    view = apply_call_event(view, ended)
    assert view.status is PublicCallStatus.ACTIVE  # ended, the dispatcher has not decided yet
    retry = RetryScheduled(
        **BASE,
        occurred_at=T0 + timedelta(seconds=21),
        next_attempt_number=2,
        due_at=T0 + timedelta(minutes=5),
        after_outcome=Outcome.BUSY,
    )
    view = apply_call_event(view, retry)
    assert view.status is PublicCallStatus.WAITING
    assert view.outcome == "busy" and view.error is None
    finished = ContactFinished(
        **BASE, occurred_at=T0 + timedelta(minutes=9), outcome=Outcome.BUSY, attempts=2
    )
    view = apply_call_event(view, finished)
    assert view.status is PublicCallStatus.FAILED
    assert view.error == "Number busy"
    assert view.attempts[0].ending is not None and view.attempts[0].ending.provider_code == "486"


def test_voicemail_counts_as_completed() -> None:
    view = apply_call_event(
        None, ContactFinished(**BASE, occurred_at=T0, outcome=Outcome.VOICEMAIL, attempts=1)
    )
    assert view.status is PublicCallStatus.COMPLETED and view.error is None


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (SkipReason.INVALID_NUMBER, "Invalid phone number"),
        (SkipReason.DUPLICATE, "Duplicate phone number in batch"),
        (SkipReason.DO_NOT_CALL, "Number is on the do-not-call list"),
    ],
)
def test_skipped_rows_fail_with_their_reason(reason: SkipReason, text: str) -> None:
    view = apply_call_event(
        None, ContactSkipped(**BASE, occurred_at=T0, row_number=3, phone_number="12ab", reason=reason)
    )
    assert view.status is PublicCallStatus.FAILED
    assert view.is_skipped and view.error == text


def test_cancelled_contact_is_cancelled_unless_its_active_call_finished() -> None:
    view = apply_call_event(None, ContactCancelled(**BASE, occurred_at=T0))
    assert view.status is PublicCallStatus.CANCELLED
    view = apply_call_event(
        view, ContactFinished(**BASE, occurred_at=T0, outcome=Outcome.COMPLETED, attempts=1)
    )
    assert view.status is PublicCallStatus.COMPLETED


def test_row_number_is_read_from_the_deterministic_contact_id() -> None:
    assert row_number_of("batch_ab12_r42") == 42
    assert row_number_of("weird") is None
