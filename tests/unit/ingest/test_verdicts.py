"""Row verdicts: the first occurrence of a number is dialed once; duplicates and do-not-call are skipped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.domain.phone import INVALID_MARK
from ingest.domain.verdicts import RowJudge
from shared.outcomes import SkipReason

pytestmark = pytest.mark.unit

numbers = st.sampled_from(["+14155550101", "+14155550102", "+442079460958", "+33142685300", "!bad\x1fxyz"])


@given(rows=st.lists(numbers, max_size=40), dnc=st.sets(numbers))
def test_each_callable_number_is_accepted_exactly_once_at_its_first_row(
    rows: list[str], dnc: set[str]
) -> None:
    judge = RowJudge(dnc)
    verdicts = [judge.judge(i, n) for i, n in enumerate(rows, start=1)]
    accepted = [v.phone_number for v in verdicts if v.accepted]
    expected = [
        n for i, n in enumerate(rows) if not n.startswith(INVALID_MARK) and n not in rows[:i] and n not in dnc
    ]
    assert accepted == expected
    assert len(set(accepted)) == len(accepted)  # no number dialed twice
    assert judge.accepted + judge.skipped_total == len(rows)  # nothing lost
    for i, (number, verdict) in enumerate(zip(rows, verdicts, strict=True)):
        if number.startswith(INVALID_MARK):
            assert verdict.skip is SkipReason.INVALID_NUMBER and verdict.phone_number == "xyz"
        elif number in rows[:i]:
            assert verdict.skip is SkipReason.DUPLICATE
            assert verdict.detail == f"same number as row {rows.index(number) + 1}"
        elif number in dnc:
            assert verdict.skip is SkipReason.DO_NOT_CALL


def test_counts_by_reason() -> None:
    judge = RowJudge({"+2"})
    for i, n in enumerate(["+1", "+1", "+2", "!x\x1fy", "+3"], start=1):
        judge.judge(i, n)
    assert judge.accepted == 2
    assert judge.skipped == {SkipReason.DUPLICATE: 1, SkipReason.DO_NOT_CALL: 1, SkipReason.INVALID_NUMBER: 1}
