"""The start options people type: --at, --window, --retry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchcalls_cli.options import OptionError, parse_at, parse_duration, parse_retry, parse_window

pytestmark = pytest.mark.unit
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-02T09:00:00Z", "2026-05-02T09:00:00Z"),
        ("2026-05-02 09:00", "2026-05-02T09:00:00Z"),
        ("2026-05-02T09:00:00+02:00", "2026-05-02T07:00:00Z"),
        ("+10m", "2026-05-01T12:10:00Z"),
        ("in 2h", "2026-05-01T14:00:00Z"),
        ("+90", "2026-05-01T12:01:30Z"),
    ],
)
def test_at_becomes_the_reference_utc_format(text: str, expected: str) -> None:
    assert parse_at(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+ten minutes", "2026-13-01"])
def test_at_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(OptionError):
        parse_at(text, NOW)


def test_window_with_day_range_hours_and_zone() -> None:
    window = parse_window("mon-fri 9:00-17:30 Europe/London")
    assert window.days == (0, 1, 2, 3, 4)
    assert (window.start, window.end, window.timezone) == ("09:00", "17:30", "Europe/London")


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("all 00:00-23:59 UTC", (0, 1, 2, 3, 4, 5, 6)),
        ("08:00-21:00", (0, 1, 2, 3, 4, 5, 6)),
        ("weekends 10:00-18:00", (5, 6)),
        ("mon,wed,fri 10:00-18:00", (0, 2, 4)),
        ("fri-mon 10:00-18:00", (0, 4, 5, 6)),
        ("Saturday 10:00-12:00", (5,)),
    ],
)
def test_window_days(text: str, days: tuple[int, ...]) -> None:
    assert parse_window(text).days == days


@pytest.mark.parametrize(
    "text", ["", "mon-fri", "someday 09:00-10:00", "09:00-08:00", "9-17", "all 9:00-25:00"]
)
def test_window_rejects_nonsense(text: str) -> None:
    with pytest.raises(OptionError):
        parse_window(text)


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59))
def test_window_hours_round_trip_or_are_refused(h1: int, m1: int, h2: int, m2: int) -> None:
    text = f"{h1}:{m1:02d}-{h2}:{m2:02d}"
    if h1 * 60 + m1 >= h2 * 60 + m2:
        with pytest.raises(OptionError):
            parse_window(text)
        return
    window = parse_window(text)
    assert (window.start, window.end) == (f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}")


def test_retry_count_and_ladder() -> None:
    retry = parse_retry("3:30s,5m,1h")
    assert retry.max_attempts == 3
    assert retry.gaps_seconds == (30, 300, 3600)
    assert parse_retry("2").gaps_seconds == ()


@pytest.mark.parametrize("text", ["0", "21", "x", "3:soon"])
def test_retry_rejects_nonsense(text: str) -> None:
    with pytest.raises(OptionError):
        parse_retry(text)


@given(st.integers(0, 10_000), st.sampled_from(["s", "m", "h", "d", ""]))
def test_durations(value: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}[unit]
    assert parse_duration(f"{value}{unit}") == value * factor
