from __future__ import annotations

import math
import statistics
from collections import Counter

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialer.config import Settings
from dialer.domain.call import OutboundCall
from dialer.domain.simulation import ANSWERED, DEFAULT_MIX, TEST_NUMBERS, CallSimulator, Draws, parse_mix
from shared.outcomes import Outcome

pytestmark = pytest.mark.unit


def call(to: str = "+14155550123", attempt: str = "batch_1_r1_a1", **kw: float) -> OutboundCall:
    return OutboundCall(attempt_id=attempt, to=to, prompt="", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("number", sorted(TEST_NUMBERS))
def test_test_numbers_are_valid_numbers(number: str) -> None:
    # Ingest rejects invalid numbers, so a test number must pass the same check to reach the dialer.
    assert phonenumbers.is_valid_number(phonenumbers.parse(number))


@pytest.mark.parametrize(("number", "spec"), sorted(TEST_NUMBERS.items()))
def test_test_numbers_always_give_their_outcome(number: str, spec: object) -> None:
    sim = CallSimulator(seed=7)
    outcomes = {sim.plan(call(number, attempt=f"a{i}")).outcome for i in range(50)}
    assert outcomes == {TEST_NUMBERS[number].outcome}


def test_same_seed_and_attempt_give_the_same_call() -> None:
    assert CallSimulator(3).plan(call()) == CallSimulator(3).plan(call())


def test_different_seeds_differ_somewhere() -> None:
    a = [CallSimulator(1).plan(call(attempt=f"x{i}")) for i in range(50)]
    b = [CallSimulator(2).plan(call(attempt=f"x{i}")) for i in range(50)]
    assert a != b


def test_the_mix_is_roughly_the_configured_one() -> None:
    sim = CallSimulator(11)
    n = 20_000
    counts = Counter(sim.plan(call(attempt=f"m{i}", ring_timeout_seconds=60.0)).outcome for i in range(n))
    for outcome, weight in DEFAULT_MIX:
        assert abs(counts[outcome] / n - weight) < 0.02, outcome


def test_the_maximum_duration_caps_talk_time() -> None:
    plan = CallSimulator(1).plan(call("+12025550109", max_call_seconds=2.0))
    assert plan.outcome is Outcome.COMPLETED
    assert plan.talk_seconds == 2.0
    assert "maximum call duration" in plan.provider_reason


@settings(max_examples=300)
@given(
    st.integers(0, 2**32),
    st.text(min_size=1, max_size=20),
    st.floats(1, 3600),
    st.floats(1, 120),
)
def test_every_plan_respects_the_limits(seed: int, attempt: str, max_seconds: float, ring: float) -> None:
    plan = CallSimulator(seed).plan(
        call(attempt=attempt, max_call_seconds=max_seconds, ring_timeout_seconds=ring)
    )
    assert 0 <= plan.talk_seconds <= max_seconds
    assert plan.ring_seconds <= ring
    assert math.isfinite(plan.talk_seconds)
    assert (plan.talk_seconds > 0) == (plan.outcome in ANSWERED)
    if plan.outcome is Outcome.NO_ANSWER:
        assert plan.rings and plan.ring_seconds == ring


def test_a_mix_needs_weight() -> None:
    with pytest.raises(ValueError):
        CallSimulator(1, mix=[(Outcome.BUSY, 0.0)])


def test_an_outcome_mix_from_settings_parses_and_names_a_bad_item() -> None:
    assert parse_mix("") == DEFAULT_MIX
    assert parse_mix("completed=0.8, busy=0.2") == ((Outcome.COMPLETED, 0.8), (Outcome.BUSY, 0.2))
    with pytest.raises(ValueError, match="'answered=1'"):
        parse_mix("answered=1")
    with pytest.raises(ValueError, match="'busy'"):
        parse_mix("completed=1,busy")
    with pytest.raises(ValueError, match="positive weight"):
        parse_mix("completed=0")


def test_a_dialer_with_a_bad_outcome_mix_does_not_start() -> None:
    with pytest.raises(ValidationError, match="sim_outcomes"):
        Settings(sim_outcomes="completed=x")


def test_an_attempts_draws_are_uniform_and_its_call_lengths_long_tailed() -> None:
    uniforms = [Draws(f"7:a{i}").random() for i in range(20_000)]
    assert all(0.0 <= u < 1.0 for u in uniforms)
    assert abs(statistics.fmean(uniforms) - 0.5) < 0.01
    assert abs(sum(u < 0.1 for u in uniforms) / len(uniforms) - 0.1) < 0.01
    lengths = sorted(Draws(f"7:b{i}").lognormvariate(math.log(45.0), 0.8) for i in range(20_000))
    assert 42 < statistics.median(lengths) < 48  # a 45 s median
    assert lengths[int(0.95 * len(lengths))] > 2.5 * 45  # and a long tail (e^(1.645*0.8) = 3.7)
