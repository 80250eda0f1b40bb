from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.sip_outcomes import outcome_for_final_response
from shared.outcomes import Outcome

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (486, Outcome.BUSY),
        (600, Outcome.BUSY),
        (404, Outcome.UNREACHABLE),
        (480, Outcome.UNREACHABLE),
        (410, Outcome.INVALID_NUMBER),
        (484, Outcome.INVALID_NUMBER),
        (604, Outcome.INVALID_NUMBER),
        (403, Outcome.CARRIER_BLOCKED),
        (603, Outcome.CARRIER_BLOCKED),
        (500, Outcome.SYSTEM_ERROR),
        (503, Outcome.SYSTEM_ERROR),
        (488, Outcome.SYSTEM_ERROR),
        (401, Outcome.SYSTEM_ERROR),
    ],
)
def test_final_responses_after_ringing(code: int, outcome: Outcome) -> None:
    assert outcome_for_final_response(code, had_provisional=True) is outcome


def test_timeouts_depend_on_whether_the_far_end_was_reached() -> None:
    assert outcome_for_final_response(408, had_provisional=True) is Outcome.NO_ANSWER
    assert outcome_for_final_response(408, had_provisional=False) is Outcome.SYSTEM_ERROR


def test_our_cancel_after_ringing_is_no_answer() -> None:
    assert outcome_for_final_response(487, had_provisional=True, cancelled_by_us=True) is Outcome.NO_ANSWER
    assert outcome_for_final_response(487, had_provisional=False) is Outcome.SYSTEM_ERROR


@given(st.integers(300, 699), st.booleans())
def test_no_failure_response_is_ever_billable(code: int, rang: bool) -> None:
    assert not outcome_for_final_response(code, had_provisional=rang).billable
