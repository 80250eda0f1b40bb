"""Calls per second: no window of one second ever holds more starts than the plan allows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.start_rate import StartRate, StartWindow, window_of

pytestmark = pytest.mark.unit


def max_in_any_window(starts: list[float], span: float) -> int:
    starts = sorted(starts)
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while t - starts[lo] > span:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@settings(max_examples=200, deadline=None)
@given(
    cps=st.sampled_from([0.5, 1, 2, 2.5, 5, 20, 50, 1000]),
    ticks=st.lists(st.tuples(st.floats(0.0001, 0.7), st.integers(1, 60)), min_size=1, max_size=120),
)
def test_no_window_holds_more_than_the_limit(cps: float, ticks: list[tuple[float, int]]) -> None:
    rate = StartRate()
    t = 1000.0
    starts: list[float] = []
    for gap, wanted in ticks:
        t += gap
        granted = min(wanted, rate.allowance(t, cps))
        rate.record(t, granted)
        starts.extend([t] * granted)
    span, limit = window_of(cps)
    assert max_in_any_window(starts, span) <= limit  # closed windows: both ends count


def test_mean_rate_reaches_the_limit_while_work_waits() -> None:
    rate = StartRate()
    t, starts = 0.0, 0
    while t < 60:
        granted = rate.allowance(t, 20)
        rate.record(t, granted)
        starts += granted
        t = max(t + 0.001, rate.next_start_at(t, 20))
    assert 0.95 * 20 * 60 <= starts <= 20 * 60


def test_a_new_owner_waits_one_span() -> None:
    window = StartWindow()
    window.hold_until(10.0, 5)
    assert window.allowance(9.99, 5) == 0
    assert window.allowance(10.001, 5) == 5


def test_slow_plans_widen_the_window() -> None:
    assert window_of(0.5) == (2.0, 1)
    assert window_of(2.5) == (1.0, math.floor(2.5))
