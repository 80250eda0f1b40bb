"""Start slots: no window of one second (1/cps below 1/s) ever holds more planned starts than the plan
allows, whatever the round times and plan changes, and with work waiting the plan's rate is used."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.start_rate import (
    MAX_PUBLISH_LAG_SECONDS,
    SAFETY_MARGIN_SECONDS,
    DialerPace,
    StartSlots,
    expected_lag,
    window_of,
)
from shared.events import START_TOLERANCE_SECONDS

pytestmark = pytest.mark.unit

PLANS = st.sampled_from([0.1, 0.5, 0.9, 1, 1.5, 2, 2.5, 5, 20, 50, 1000])


def crowded(slots: list[tuple[float, float]], shift: float = 0.0) -> list[tuple[float, int, int]]:
    """Each slot's closed window of one span ending at it: (slot, starts inside, allowed by its plan).
    `shift` moves the window's start earlier (a start made late within the tolerance)."""
    times = sorted(t for t, _ in slots)
    out = []
    for t, cps in slots:
        span, limit = window_of(cps)
        inside = sum(1 for u in times if t - span - shift <= u <= t)
        out.append((t, inside, limit))
    return out


@settings(max_examples=150, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(st.floats(0.0, 3.0), st.integers(0, 80), PLANS, st.floats(0.0, 1.0)),
        min_size=1,
        max_size=80,
    ),
    given_back=st.lists(st.integers(0, 5), min_size=80, max_size=80),
)
def test_no_window_holds_more_than_the_plan_allows(
    rounds: list[tuple[float, int, float, float]], given_back: list[int]
) -> None:
    # Each round plans from its time plus an expected publish lag that rises and falls at random.
    slots = StartSlots()
    t = 1000.0
    planned: list[tuple[float, float]] = []
    for (gap, wanted, cps, lag), back in zip(rounds, given_back, strict=False):
        t += gap
        taken = slots.take(t + lag, cps, wanted)
        assert all(t <= s <= t + 1.0 + slots.lead for s in taken)
        assert taken == sorted(taken)
        back = min(back, len(taken))
        slots.give_back(back)
        planned.extend((s, cps) for s in taken[: len(taken) - back])
    times = [s for s, _ in planned]
    assert times == sorted(times)
    # A dialer may start each call up to the tolerance late: real starts keep the plan too.
    for slot, inside, limit in crowded(planned, shift=START_TOLERANCE_SECONDS):
        assert inside <= limit, (slot, inside, limit)


@settings(max_examples=100, deadline=None)
@given(cps=PLANS, latencies=st.lists(st.floats(0.0, 0.45), min_size=200, max_size=200))
def test_with_work_waiting_the_mean_rate_is_the_plans(cps: float, latencies: list[float]) -> None:
    # A round takes up to 0.45 s (less than the lead) and comes back when the next slot may be planned.
    slots = StartSlots()
    t, first = 0.0, None
    planned: list[float] = []
    span, limit = window_of(cps)
    horizon = max(60.0, 40 * span)
    i = 0
    while t < horizon:
        taken = slots.take(t, cps, 10_000)
        planned.extend(taken)
        first = planned[0] if planned and first is None else first
        t += max(slots.wait(t, cps), latencies[i % len(latencies)])
        i += 1
    assert first is not None
    done = [s for s in planned if s <= horizon]
    rate = (len(done) - 1) / (done[-1] - first)
    allowed = limit / span
    assert allowed * 0.95 <= rate <= allowed


def test_slots_are_spaced_not_bunched() -> None:
    slots = StartSlots()
    taken = slots.take(0.0, 20, 100)
    gaps = {round(b - a, 6) for a, b in zip(taken, taken[1:], strict=False)}
    assert gaps == {round((1 + SAFETY_MARGIN_SECONDS) / 20, 6)}
    assert len(taken) == 10  # half a second of lead, at ~20/s (the first slot is now)
    assert slots.wait(0.0, 20) == pytest.approx(taken[-1] + (1 + SAFETY_MARGIN_SECONDS) / 20 - 0.5)


def test_a_lower_plan_waits_for_the_window_of_the_higher_one() -> None:
    slots = StartSlots()
    fast = slots.take(0.0, 50, 100) + slots.take(0.45, 50, 100)
    assert slots.take(0.5, 5, 10) == []  # the one-second window ending anywhere before 1.0 s is full
    slow = slots.take(1.5, 5, 10)
    # Only once all but 4 of the fast slots left the window of one second may the 5/s plan start again.
    assert slow
    assert slow[0] >= fast[-5] + 1.0


def test_given_back_slots_are_planned_again() -> None:
    slots = StartSlots()
    taken = slots.take(0.0, 20, 5)
    slots.give_back(3)
    assert slots.take(0.0, 20, 3) == taken[2:]


def test_below_one_per_second_the_span_widens() -> None:
    slots = StartSlots(lead=10.0)
    taken = slots.take(0.0, 0.25, 10)
    assert taken == pytest.approx([0.0, 4.0 + SAFETY_MARGIN_SECONDS, 8.0 + 2 * SAFETY_MARGIN_SECONDS])


def test_the_expected_publish_lag_rises_at_once_and_falls_slowly() -> None:
    lag = expected_lag(0.0, 0.3)
    assert lag == 0.3
    assert expected_lag(lag, 0.05) == pytest.approx(0.27)
    assert expected_lag(lag, 5.0) == MAX_PUBLISH_LAG_SECONDS


def test_planning_time_never_goes_back() -> None:
    slots = StartSlots()
    late = slots.take(10.0, 20, 1)
    assert slots.take(9.0, 20, 1)[0] > late[0]


def test_dialer_pace_halves_once_a_second_on_misses_and_grows_back_to_the_plan() -> None:
    pace = DialerPace()
    assert pace.rate(1000) == 1000
    pace.missed(10.0, 1000)
    pace.missed(10.5, 1000)  # the same step's other misses: one back-off a second
    assert pace.rate(1000) == 500
    pace.missed(11.0, 1000)
    assert pace.rate(1000) == 250
    pace.kept(11.5, 1000)  # too soon after the last change
    assert pace.rate(1000) == 250
    t = 12.0
    while pace.cap is not None:
        pace.kept(t, 1000)
        t += 1.0
    assert pace.rate(1000) == 1000 and t < 60  # back to the plan, in well under a minute


@given(
    events=st.lists(st.tuples(st.floats(0, 1000), st.booleans()), max_size=200),
    cps=st.floats(0.1, 100_000),
)
def test_dialer_pace_never_exceeds_the_plan(events: list[tuple[float, bool]], cps: float) -> None:
    pace = DialerPace()
    for at, missed in sorted(events):
        (pace.missed if missed else pace.kept)(at, cps)
        assert 0 < pace.rate(cps) <= cps
