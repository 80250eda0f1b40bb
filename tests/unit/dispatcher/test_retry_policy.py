"""The retry ladder: which outcomes retry, how often, after how long."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.domain.retry_policy import (
    DEFAULT_GAPS_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    SYSTEM_ERROR_RETRIES,
    Finish,
    Retry,
    RetryPolicy,
)
from shared.outcomes import Outcome

pytestmark = pytest.mark.unit

outcomes = st.sampled_from(list(Outcome))


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.decide(Outcome.BUSY) == Retry(DEFAULT_GAPS_SECONDS[0])
    assert policy.decide(Outcome.NO_ANSWER, [Outcome.BUSY]) == Retry(DEFAULT_GAPS_SECONDS[1])
    assert policy.decide(Outcome.NO_ANSWER, [Outcome.BUSY, Outcome.BUSY]) == Finish(Outcome.NO_ANSWER)
    assert policy.decide(Outcome.VOICEMAIL) == Finish(Outcome.VOICEMAIL)
    assert RetryPolicy(retry_voicemail=True).decide(Outcome.VOICEMAIL) == Retry(DEFAULT_GAPS_SECONDS[0])
    assert policy.decide(Outcome.UNREACHABLE) == Retry(DEFAULT_GAPS_SECONDS[0])
    assert policy.decide(Outcome.UNREACHABLE, [Outcome.UNREACHABLE]) == Finish(Outcome.UNREACHABLE)
    for never in (Outcome.COMPLETED, Outcome.INVALID_NUMBER, Outcome.CARRIER_BLOCKED, Outcome.OPTED_OUT):
        assert policy.decide(never) == Finish(never)


def test_system_errors_do_not_use_the_attempt_budget_but_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=1)
    assert isinstance(policy.decide(Outcome.SYSTEM_ERROR), Retry)
    history = [Outcome.SYSTEM_ERROR] * SYSTEM_ERROR_RETRIES
    assert policy.decide(Outcome.SYSTEM_ERROR, history) == Finish(Outcome.SYSTEM_ERROR)


def test_overrides_from_smart_callback_config() -> None:
    policy = RetryPolicy.of(5, [60, 120], False)
    assert policy.max_attempts == 5
    waits = [policy.decide(Outcome.BUSY, [Outcome.BUSY] * n) for n in range(4)]
    assert waits == [Retry(60), Retry(120), Retry(120), Retry(120)]
    assert policy.decide(Outcome.BUSY, [Outcome.BUSY] * 4) == Finish(Outcome.BUSY)
    assert RetryPolicy.of(None, None, False) == RetryPolicy()


@given(
    max_attempts=st.integers(1, 8),
    gaps=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    voicemail=st.booleans(),
    history=st.lists(outcomes, max_size=12),
)
def test_the_ladder_never_exceeds_its_budget(
    max_attempts: int, gaps: list[int], voicemail: bool, history: list[Outcome]
) -> None:
    policy = RetryPolicy.of(max_attempts, gaps, voicemail)
    *previous, last = history or [Outcome.BUSY]
    decision = policy.decide(last, previous)
    counted = sum(1 for o in history if o is not Outcome.SYSTEM_ERROR)
    if isinstance(decision, Retry):
        assert decision.wait_seconds in (*gaps, 30)
        assert last not in (
            Outcome.COMPLETED,
            Outcome.INVALID_NUMBER,
            Outcome.CARRIER_BLOCKED,
            Outcome.OPTED_OUT,
        )
        if last is not Outcome.SYSTEM_ERROR:
            assert counted < max_attempts
        if last is Outcome.UNREACHABLE:
            assert sum(1 for o in history if o is Outcome.UNREACHABLE) == 1
        if last is Outcome.VOICEMAIL:
            assert voicemail
    else:
        assert decision == Finish(last)


@given(seq=st.lists(outcomes, min_size=1, max_size=40))
def test_a_contact_always_finishes(seq: list[Outcome]) -> None:
    """Feeding any outcome stream, the policy stops within max_attempts + system-error retries."""
    policy = RetryPolicy()
    history: list[Outcome] = []
    for outcome in seq:
        decision = policy.decide(outcome, history)
        history.append(outcome)
        if isinstance(decision, Finish):
            break
    assert len(history) <= DEFAULT_MAX_ATTEMPTS + SYSTEM_ERROR_RETRIES + 1
