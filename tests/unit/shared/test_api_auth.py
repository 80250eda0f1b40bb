from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.api_auth import RequestLimiter
from shared.workspaces import hash_secret, split_key

pytestmark = pytest.mark.unit


def test_limiter_admits_up_to_the_plan_then_says_how_long_to_wait() -> None:
    limiter = RequestLimiter(window_seconds=60)
    assert all(limiter.admit("ws", 3, now=t) is None for t in (0.0, 1.0, 2.0))
    assert limiter.admit("ws", 3, now=10.0) == pytest.approx(50.0)
    assert limiter.admit("other", 3, now=10.0) is None, "workspaces have separate budgets"
    assert limiter.admit("ws", 3, now=60.5) is None, "the oldest request left the window"


@given(
    st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=200).map(sorted), st.integers(1, 20)
)
def test_no_window_of_sixty_seconds_admits_more_than_the_limit(times: list[float], limit: int) -> None:
    limiter = RequestLimiter(window_seconds=60)
    admitted = [t for t in times if limiter.admit("ws", limit, now=t) is None]
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 60) <= limit


def test_key_format() -> None:
    assert split_key("bck_abc123_s3cr-et") == ("abc123", "s3cr-et")
    for bad in ("", "bck_", "bck__x", "xyz_abc_def", "bck_abc"):
        assert split_key(bad) is None
    assert hash_secret("a") != hash_secret("b") and len(hash_secret("a")) == 64
