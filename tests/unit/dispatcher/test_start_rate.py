"""Start slots: no window of one second (1/cps below 1/s) ever holds more starts than the plan allows,
wherever inside its slot each call starts, whatever the round times and plan changes; with work waiting
the plan's rate is used, and a workspace far below its plan gets slots that stay open longer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.start_rate import (
    CLOCK_SLACK_SECONDS,
    IDLE_RESTART_SECONDS,
    MAX_PUBLISH_LAG_SECONDS,
    MAX_SLACK_SECONDS,
    MIN_TOLERANCE_SECONDS,
    SLOW_START_CALLS_PER_SECOND,
    DialerPace,
    Slot,
    StartSlots,
    expected_lag,
    window_of,
)
from shared.events import START_TOLERANCE_SECONDS

pytestmark = pytest.mark.unit

WIDEST_MARGIN = START_TOLERANCE_SECONDS + CLOCK_SLACK_SECONDS
"""Between slots that could share a window at the plan's rate, while the tolerance is the widest."""

PLANS = st.sampled_from([0.1, 0.5, 0.9, 1, 1.5, 2, 2.5, 5, 20, 50, 1000])
RATES = st.sampled_from([1.0, 1.0, 0.5, 0.1])
TOLERANCES = st.floats(MIN_TOLERANCE_SECONDS, START_TOLERANCE_SECONDS)


def crowded(planned: list[tuple[Slot, float]]) -> list[tuple[Slot, int, int]]:
    """For each slot, the most starts any window of its plan's span that can hold its start may hold, with
    every call of it and of the slots planned before it starting anywhere inside its own slot (a window
    [t, t + span] can hold a slot's call if the slot starts by t + span and ends at t or later)."""
    out = []
    for j, (slot, cps) in enumerate(planned):
        span, limit = window_of(cps)
        earlier = [s for s, _ in planned[: j + 1]]
        # The fullest window opens at the end of one of the slots (or as early as this slot allows).
        opens = [slot.start - span] + [s.by for s in earlier if slot.start - span <= s.by <= slot.by]
        most = max(sum(1 for s in earlier if s.start <= t + span and s.by >= t) for t in opens)
        out.append((slot, most, limit))
    return out


@settings(max_examples=150, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(st.floats(0.0, 3.0), st.integers(0, 40), PLANS, st.floats(0.0, 1.0), RATES, TOLERANCES),
        min_size=1,
        max_size=60,
    ),
    given_back=st.lists(st.integers(0, 5), min_size=60, max_size=60),
)
def test_no_window_holds_more_than_the_plan_allows(
    rounds: list[tuple[float, int, float, float, float, float]], given_back: list[int]
) -> None:
    # Each round plans from its time plus an expected publish lag that rises and falls at random, at the
    # plan's rate or a fraction of it (the dialers' pace), with a tolerance learned from the dialers'
    # lateness that changes from round to round.
    slots = StartSlots()
    t = 1000.0
    planned: list[tuple[Slot, float]] = []
    for (gap, wanted, cps, lag, pace, tolerance), back in zip(rounds, given_back, strict=False):
        t += gap
        taken = slots.take(t + lag, cps, wanted, rate=cps * pace, tolerance=tolerance)
        assert all(t <= s.start <= t + 1.0 + slots.lead for s in taken)
        slack = [s.by - s.start for s in taken]
        assert all(tolerance - 1e-9 <= d <= MAX_SLACK_SECONDS + 1e-9 for d in slack)
        assert taken == sorted(taken)
        back = min(back, len(taken))
        slots.give_back(back)
        planned.extend((s, cps) for s in taken[: len(taken) - back])
    starts = [s.start for s, _ in planned]
    assert starts == sorted(starts)
    for slot, inside, limit in crowded(planned):
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
        planned.extend(s.start for s in taken)
        first = planned[0] if planned and first is None else first
        t += max(slots.wait(t, cps), latencies[i % len(latencies)])
        i += 1
    assert first is not None
    done = [s for s in planned if s <= horizon]
    rate = (len(done) - 1) / (done[-1] - first)
    allowed = limit / span
    assert allowed * 0.95 <= rate <= allowed


@settings(max_examples=50, deadline=None)
@given(cps=st.sampled_from([5, 20, 50, 1000]))
def test_a_punctual_dialers_tolerance_raises_the_rate_a_plan_runs_at(cps: float) -> None:
    # Work always waiting: at the widest tolerance a plan of `limit` per span runs at limit / (span + 50
    # ms); at the narrowest, limit / (span + 20 ms), and no window holds more than the limit.
    def run(tolerance: float) -> list[Slot]:
        slots, t, taken = StartSlots(), 0.0, []
        while t < 30.0:
            taken.extend(slots.take(t, cps, 10_000, tolerance=tolerance))
            t += max(0.01, slots.wait(t, cps, tolerance=tolerance))
        return taken

    wide, narrow = run(START_TOLERANCE_SECONDS), run(MIN_TOLERANCE_SECONDS)
    span, limit = window_of(cps)
    for taken, tolerance in ((wide, START_TOLERANCE_SECONDS), (narrow, MIN_TOLERANCE_SECONDS)):
        done = [s.start for s in taken if s.start <= 25.0]
        rate = (len(done) - 1) / (done[-1] - done[0])
        assert rate == pytest.approx(limit / (span + tolerance + 0.005), rel=0.01)
        assert all(s.by - s.start == pytest.approx(tolerance) for s in taken)
        assert all(inside <= most for _, inside, most in crowded([(s, cps) for s in taken[:200]]))


def test_the_tolerance_follows_how_late_the_dialers_start() -> None:
    pace = DialerPace(cap=None, slow_start=False)
    assert pace.tolerance() == START_TOLERANCE_SECONDS  # nothing seen yet: the widest
    t = 0.0
    for _ in range(400):  # punctual starts, 2 ms late: down to the narrowest
        t += 0.05
        pace.started(t, 20, 0.002)
    assert pace.tolerance() == MIN_TOLERANCE_SECONDS
    pace.started(t, 20, 0.020)  # one late start counts at once: half again its lateness, and the clock slack
    assert pace.tolerance() == pytest.approx(1.5 * 0.020 + 0.005)
    pace.started(t, 20, -0.010)  # early (another host's clock): the estimate only decays
    assert pace.tolerance() == pytest.approx(1.5 * 0.020 * 0.99 + 0.005)
    pace.missed(t, 20)  # a miss: the widest again
    assert pace.tolerance() == START_TOLERANCE_SECONDS


def test_an_idle_workspace_forgets_its_dialers_punctuality() -> None:
    pace = DialerPace(cap=None, slow_start=False)
    for i in range(400):
        pace.started(i * 0.05, 20, 0.0)
    pace.planned(20.0)
    assert pace.tolerance() == MIN_TOLERANCE_SECONDS
    pace.planned(20.0 + IDLE_RESTART_SECONDS + 1)
    assert pace.tolerance() == START_TOLERANCE_SECONDS


def test_slots_are_spaced_not_bunched() -> None:
    slots = StartSlots()
    taken = [s.start for s in slots.take(0.0, 20, 100)]
    gaps = {round(b - a, 6) for a, b in zip(taken, taken[1:], strict=False)}
    assert gaps == {round((1 + WIDEST_MARGIN) / 20, 6)}
    assert len(taken) == 10  # half a second of lead, at ~20/s (the first slot is now)
    assert slots.wait(0.0, 20) == pytest.approx(taken[-1] + (1 + WIDEST_MARGIN) / 20 - 0.5)


def test_a_lower_plan_waits_for_the_window_of_the_higher_one() -> None:
    slots = StartSlots()
    fast = [s.start for s in slots.take(0.0, 50, 100) + slots.take(0.45, 50, 100)]
    assert slots.take(0.5, 5, 10) == []  # the one-second window ending anywhere before 1.0 s is full
    slow = slots.take(1.5, 5, 10)
    # Only once all but 4 of the fast slots left the window of one second may the 5/s plan start again.
    assert slow
    assert slow[0].start >= fast[-5] + 1.0


def test_given_back_slots_are_planned_again() -> None:
    slots = StartSlots()
    taken = slots.take(0.0, 20, 5)
    slots.give_back(3)
    # The same starts (each slot's slack follows the round's demand: these rounds ask for fewer).
    assert [s.start for s in slots.take(0.0, 20, 3)] == [s.start for s in taken[2:]]


def test_below_one_per_second_the_span_widens() -> None:
    slots = StartSlots(lead=10.0)
    taken = [s.start for s in slots.take(0.0, 0.25, 10)]
    assert taken == pytest.approx([0.0, 4.0 + WIDEST_MARGIN, 8.0 + 2 * WIDEST_MARGIN])


def test_the_expected_publish_lag_rises_at_once_and_falls_slowly() -> None:
    lag = expected_lag(0.0, 0.3)
    assert lag == 0.3
    assert expected_lag(lag, 0.05) == pytest.approx(0.27)
    assert expected_lag(lag, 5.0) == MAX_PUBLISH_LAG_SECONDS


def test_planning_time_never_goes_back() -> None:
    slots = StartSlots()
    late = slots.take(10.0, 20, 1)
    assert slots.take(9.0, 20, 1)[0].start > late[0].start


def test_dialer_pace_halves_once_a_second_on_misses_and_grows_back_to_the_plan() -> None:
    pace = DialerPace(cap=None, slow_start=False, misses_to_back_off=1)
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
    pace = DialerPace(cap=None, slow_start=False, misses_to_back_off=1)
    for at, missed in sorted(events):
        (pace.missed if missed else pace.kept)(at, cps)
        assert 0 < pace.rate(cps) <= cps


def test_a_workspace_far_below_its_plan_gets_slots_that_stay_open_longer() -> None:
    # 100 starts a second on a plan of 100,000: the windows have room to spare, so a late dialer (up to
    # MAX_SLACK_SECONDS) still keeps the plan instead of missing the slot.
    slots = StartSlots()
    t, taken = 0.0, []
    while t < 3.0:
        taken += slots.take(t, 100_000, 5)
        t += 0.05
    assert all(s.by - s.start == pytest.approx(MAX_SLACK_SECONDS) for s in taken)


def test_near_its_plan_a_workspace_gets_the_tolerance_back() -> None:
    # Slack given while slow shrinks once the workspace plans at its plan's rate again.
    slots = StartSlots()
    t = 0.0
    for _ in range(40):  # 2 s at 5/s on a plan of 20/s
        slots.take(t, 20, 1)
        t += 0.2
    assert slots.take(t, 20, 1)[0].by - t > 1.0
    last: list[Slot] = []
    for _ in range(200):  # 20 s with work waiting
        last = slots.take(t, 20, 100) or last
        t += 0.1
    assert last[-1].by - last[-1].start == pytest.approx(START_TOLERANCE_SECONDS)


def test_a_first_round_far_below_the_plan_gets_the_slack_and_one_at_the_plan_does_not() -> None:
    high = StartSlots().take(0.0, 100_000, 500)  # 500 at once, 1,000/s over the lead: far below
    assert {round(s.by - s.start, 6) for s in high} == {MAX_SLACK_SECONDS}
    at_plan = StartSlots().take(0.0, 20, 100)  # a lead's worth at the plan's spacing
    assert at_plan[-1].by - at_plan[-1].start == pytest.approx(START_TOLERANCE_SECONDS)


def test_on_a_plan_far_above_the_dialers_the_pace_backs_off_from_the_planned_rate() -> None:
    slots, pace = StartSlots(), DialerPace(cap=None, slow_start=False, misses_to_back_off=1)
    t = 0.0
    while t < 2.0:  # 200 slots a second planned on a plan of 100,000
        slots.take(t, 100_000, 10)
        t += 0.05
    planned = slots.recent_rate(100_000)
    assert planned == pytest.approx(200, rel=0.05)
    pace.missed(t, 100_000, planned)
    assert pace.rate(100_000) == pytest.approx(planned / 2)


def test_a_new_owner_plans_around_its_predecessors_open_slots() -> None:
    before = StartSlots()
    theirs = before.take(0.0, 5, 100)  # the predecessor's slots, read back from their leases
    ours = StartSlots()
    ours.restore(theirs)
    assert ours.take(0.0, 5, 10) == []  # a lead's worth of slots of a 5/s plan was taken: the window is full
    later = ours.take(1.2, 5, 10)
    assert later and later[0].start >= theirs[0].by + 1.0


def test_misses_of_slots_planned_before_a_back_off_do_not_halve_again_nor_let_the_pace_grow() -> None:
    pace = DialerPace(cap=None, slow_start=False, misses_to_back_off=1)
    pace.missed(10.0, 1000, 800.0, slot_planned_at=7.0)
    assert pace.rate(1000) == 400
    # Slots planned at 8-9.9 s (at the old pace) keep missing for seconds: no further halving, no growth.
    for t, planned_at in ((10.8, 8.0), (11.5, 9.5), (12.2, 9.9)):
        pace.missed(t, 1000, 800.0, slot_planned_at=planned_at)
        pace.kept(t + 0.5, 1000)
        assert pace.rate(1000) == 400
    pace.missed(12.9, 1000, 400.0, slot_planned_at=12.0)  # planned at the new pace, still missed
    assert pace.rate(1000) == 200
    pace.kept(13.5, 1000)  # within a second of a miss
    assert pace.rate(1000) == 200
    pace.kept(14.0, 1000)
    assert pace.rate(1000) == pytest.approx(221)


def test_the_pace_starts_slow_and_grows_with_each_start_up_to_the_plan() -> None:
    pace = DialerPace()
    assert pace.rate(20) == 20  # a plan below the slow start is not slowed
    assert pace.rate(100_000) == SLOW_START_CALLS_PER_SECOND
    seconds = 0
    while pace.cap is not None:  # each second, the dialers start what the pace planned
        for _ in range(int(pace.rate(100_000))):
            pace.started(float(seconds), 100_000)
        seconds += 1
    assert seconds == 11  # 50 * 2**11 > 100,000: doubled every second


def test_a_miss_ends_the_slow_start_and_idle_begins_it_again() -> None:
    pace = DialerPace(misses_to_back_off=1)
    for _ in range(350):
        pace.started(3.5, 100_000)
    assert pace.start_rate(4.0) == 175  # over the last two seconds
    assert pace.start_rate(6.0) == 0
    assert pace.rate(100_000) == 400
    pace.missed(4.0, 100_000, 400.0, slot_planned_at=3.0)
    assert pace.rate(100_000) == 200 and not pace.slow_start
    pace.planned(5.0)
    pace.started(5.0, 100_000)
    assert pace.rate(100_000) == 200  # AIMD now, grown only by seconds of kept slots
    pace.planned(5.0 + IDLE_RESTART_SECONDS + 1)
    assert pace.slow_start and pace.rate(100_000) == SLOW_START_CALLS_PER_SECOND


def test_a_lone_missed_slot_does_not_slow_the_pace_but_three_in_a_second_do() -> None:
    pace = DialerPace(cap=None, slow_start=False)
    pace.missed(10.0, 20)
    pace.missed(12.0, 20)
    pace.missed(12.5, 20)
    assert pace.rate(20) == 20  # never three within one second
    pace.missed(12.8, 20)
    assert pace.rate(20) == 10
