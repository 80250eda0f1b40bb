from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.entrypoints.offsets import OffsetTracker

pytestmark = pytest.mark.unit


def test_commits_up_to_the_lowest_unfinished_offset() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        t.started("p0", offset)
    t.finished("p0", 10)
    t.finished("p0", 12)
    assert t.committable() == {"p0": 11}
    t.mark_committed({"p0": 11})
    assert t.committable() == {}
    t.finished("p0", 11)
    assert t.committable() == {"p0": 13}


def test_forgotten_partitions_are_not_committed() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    t.started("p0", 1)
    t.forget(["p0"])
    t.finished("p0", 1)
    assert t.committable() == {}
    assert t.in_flight == 0


@given(st.permutations(list(range(30))), st.integers(0, 30))
def test_never_commits_past_an_unfinished_offset(order: list[int], done_count: int) -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for offset in range(30):
        t.started("p", offset)
    finished = set(order[:done_count])
    for offset in order[:done_count]:
        t.finished("p", offset)
    position = t.committable().get("p", 0)
    assert all(o in finished for o in range(position))
    unfinished = set(range(30)) - finished
    assert position == (min(unfinished) if unfinished else 30)
