"""Calling windows: wall-clock rules per zone, the intersection of several zones, DST, next opening."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.calling_window import CallingWindow, window_for
from dispatcher.domain.recipient_zone import country_zones, lane_key, lane_zones

pytestmark = pytest.mark.unit

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Paris",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
]
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
zone_sets = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True)


def local_open(window: CallingWindow, at: datetime) -> bool:
    """The oracle: open in every zone by its wall clock."""
    for tz in window.zones:
        local = at.astimezone(tz)
        if local.weekday() not in window.days or not (window.start <= local.time() < window.end):
            return False
    return True


def test_default_window_is_eight_to_nine_local() -> None:
    window = CallingWindow(zones=(NY,))
    assert not window.is_open(datetime(2026, 3, 2, 7, 59, tzinfo=NY))
    assert window.is_open(datetime(2026, 3, 2, 8, 0, tzinfo=NY))
    assert window.is_open(datetime(2026, 3, 2, 20, 59, tzinfo=NY))
    assert not window.is_open(datetime(2026, 3, 2, 21, 0, tzinfo=NY))


def test_several_zones_hold_only_where_all_are_open() -> None:
    window = CallingWindow(zones=(NY, LA))
    assert not window.is_open(datetime(2026, 3, 2, 10, 59, tzinfo=NY))  # 07:59 in LA
    assert window.is_open(datetime(2026, 3, 2, 11, 0, tzinfo=NY))
    assert window.next_open(datetime(2026, 3, 2, 21, 30, tzinfo=NY)) == datetime(2026, 3, 3, 11, 0, tzinfo=NY)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        # Spring forward (2026-03-08 02:00 -> 03:00): 08:00 EDT is 12:00 UTC.
        (datetime(2026, 3, 8, 3, 0, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Fall back (2026-11-01 02:00 -> 01:00): 08:00 EST is 13:00 UTC.
        (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_next_open_across_dst(before: datetime, expected: datetime) -> None:
    assert CallingWindow(zones=(NY,)).next_open(before) == expected


def test_a_window_starting_in_the_dst_gap_opens_at_the_jump() -> None:
    window = CallingWindow(zones=(NY,), start=time(2, 30), end=time(5, 0))
    opens = window.next_open(datetime(2026, 3, 8, 5, 0, tzinfo=UTC))  # 00:00 EST
    assert opens == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first wall time after 02:30


def test_days_of_week_and_overnight_windows() -> None:
    weekdays = CallingWindow(zones=(NY,), days=frozenset(range(5)))
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=NY)
    assert not weekdays.is_open(saturday)
    assert weekdays.next_open(saturday) == datetime(2026, 3, 9, 8, 0, tzinfo=NY)
    night = CallingWindow(zones=(NY,), days=frozenset({0}), start=time(22), end=time(2))
    assert night.is_open(datetime(2026, 3, 2, 23, 0, tzinfo=NY))  # Monday evening
    assert night.is_open(datetime(2026, 3, 3, 1, 0, tzinfo=NY))  # Monday's window, Tuesday morning
    assert not night.is_open(datetime(2026, 3, 3, 23, 0, tzinfo=NY))


@settings(max_examples=300, deadline=None)
@given(zones=zone_sets, at=instants)
def test_is_open_is_the_wall_clock_rule_in_every_zone(zones: list[str], at: datetime) -> None:
    window = CallingWindow(zones=tuple(ZoneInfo(z) for z in zones))
    assert window.is_open(at) == local_open(window, at)


@settings(max_examples=150, deadline=None)
@given(zones=zone_sets, at=instants)
def test_next_open_is_open_and_nothing_earlier_is(zones: list[str], at: datetime) -> None:
    window = CallingWindow(zones=tuple(ZoneInfo(z) for z in zones))
    opens = window.next_open(at)
    if opens is None:
        # Never open in the horizon: a coarse scan agrees.
        assert not any(local_open(window, at + timedelta(minutes=15 * i)) for i in range(4 * 24 * 8))
        return
    assert opens >= at
    assert local_open(window, opens)
    step = timedelta(minutes=10)
    probe = at
    while probe < opens - timedelta(minutes=1):
        assert not local_open(window, probe)
        probe += step


@settings(max_examples=150, deadline=None)
@given(zones=zone_sets, at=instants)
def test_next_close_ends_the_open_period(zones: list[str], at: datetime) -> None:
    window = CallingWindow(zones=tuple(ZoneInfo(z) for z in zones))
    if not window.is_open(at):
        return
    closes = window.next_close(at)
    assert closes > at
    assert not local_open(window, closes) or closes - at >= timedelta(days=7)
    assert local_open(window, closes - timedelta(seconds=1))


def test_lane_keys_from_numbers() -> None:
    assert lane_key("+12125551234") == "America/New_York"
    assert lane_zones("America/New_York") == ("America/New_York",)
    key = lane_key("+447700900123")  # no zone of its own: grouped by country
    assert key == "+44"
    assert "Europe/London" in country_zones(key)
    assert lane_key("not a number") == "?"


def test_window_for_prefers_the_number_then_fallback_then_country() -> None:
    assert window_for(("America/New_York",), fallback_timezone="Europe/Paris").zones == (NY,)
    assert window_for((), fallback_timezone="Europe/Paris").zones == (ZoneInfo("Europe/Paris"),)
    assert ZoneInfo("Europe/London") in window_for((), country_zones=country_zones("+44")).zones
    assert window_for(()).zones == (ZoneInfo("UTC"),)


def test_zones_that_never_overlap_fall_back_to_one_zone() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    window = window_for(
        ("Pacific/Kiritimati", "Pacific/Pago_Pago"), start=time(9), end=time(10), now=now
    )  # 25 hours apart: one-hour windows never meet
    assert len(window.zones) == 1
    assert window.next_open(now) is not None
