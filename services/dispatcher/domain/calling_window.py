"""When a recipient may be called: a window of local wall-clock hours on chosen weekdays, in every time zone
the number may be in.

The rule is evaluated on the wall clock of each zone, so daylight-saving transitions need no special case:
an instant is open when, in every zone, its local weekday is allowed and its local time lies in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_START = time(8, 0)
DEFAULT_END = time(21, 0)
ALL_DAYS: frozenset[int] = frozenset(range(7))
SEARCH_DAYS = 8
"""How far ahead `next_open` looks; a window that opens on no allowed day within it never opens."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    """The IANA zone by name, or None when the name is unknown (cached: zones are immutable)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class CallingWindow:
    """Open on `days` (ISO weekday numbers, 0 = Monday) from `start` to `end` local time in all of `zones`.

    `end <= start` describes a window across midnight (22:00–06:00); its days are the days it starts on.
    """

    zones: tuple[ZoneInfo, ...]
    days: frozenset[int] = ALL_DAYS
    start: time = DEFAULT_START
    end: time = DEFAULT_END

    def is_open(self, at: datetime) -> bool:
        return all(self._open_in(z, at) for z in self.zones)

    def next_open(self, at: datetime) -> datetime | None:
        """The first instant at or after `at` when the window is open, or None if none within SEARCH_DAYS."""
        if self.is_open(at):
            return at
        for candidate in sorted(c for c in self._starts_around(at) if c > at):
            if self.is_open(candidate):
                return self._earliest_open_before(candidate, at)
        return None

    def next_close(self, at: datetime) -> datetime:
        """The first instant after `at` when the window is closed (an always-open window: far future)."""
        if not self.is_open(at):
            return at
        for candidate in sorted(c for c in self._ends_around(at) if c > at):
            if not self.is_open(candidate):
                return candidate
        return at + timedelta(days=SEARCH_DAYS)

    # --- internals --------------------------------------------------------------------------------------

    def _open_in(self, tz: ZoneInfo, at: datetime) -> bool:
        local = at.astimezone(tz)
        t = local.time()
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= t < self.end
        # Across midnight: the evening part belongs to today, the morning part to yesterday's window.
        return (t >= self.start and weekday in self.days) or (t < self.end and (weekday - 1) % 7 in self.days)

    def _local_instants(self, at: datetime, wall: time) -> Iterable[datetime]:
        for tz in self.zones:
            today = at.astimezone(tz).date()
            for offset in range(-1, SEARCH_DAYS + 1):
                day: date = today + timedelta(days=offset)
                for fold in (0, 1):
                    yield datetime.combine(day, wall, tzinfo=tz).replace(fold=fold).astimezone(UTC)

    def _starts_around(self, at: datetime) -> Iterable[datetime]:
        yield from self._local_instants(at, self.start)
        # Another zone's window end can be where the intersection opens only for overnight windows; the
        # start instants of every zone cover the rest, since the intersection opens when its last zone does.
        yield from self._local_instants(at, self.end)

    def _ends_around(self, at: datetime) -> Iterable[datetime]:
        yield from self._local_instants(at, self.end)
        yield from self._local_instants(at, self.start)

    def _earliest_open_before(self, candidate: datetime, not_before: datetime) -> datetime:
        # A start time inside a DST gap maps to an instant after the real opening (the jump itself):
        # step back minute by minute while it is still open.
        step = timedelta(minutes=1)
        earliest = candidate
        for _ in range(180):
            previous = earliest - step
            if previous < not_before or not self.is_open(previous):
                break
            earliest = previous
        return earliest


def window_for(
    number_zones: Sequence[str],
    *,
    country_zones: Sequence[str] = (),
    fallback_timezone: str | None = None,
    days: Iterable[int] = ALL_DAYS,
    start: time = DEFAULT_START,
    end: time = DEFAULT_END,
    now: datetime | None = None,
) -> CallingWindow:
    """The window for a number: its own zones; else the batch's fallback zone; else its country's zones;
    else UTC. When several zones share no open instant within SEARCH_DAYS (a country spanning half the
    globe), the fallback zone, or else the first zone, decides: the contact waits, it never fails."""
    day_set = frozenset(days)
    fallback = zone(fallback_timezone) if fallback_timezone else None
    chosen = _zones(number_zones)
    if not chosen and fallback is not None:
        chosen = (fallback,)
    if not chosen:
        chosen = _zones(country_zones)
    if not chosen:
        chosen = (ZoneInfo("UTC"),)
    window = CallingWindow(zones=chosen, days=day_set, start=start, end=end)
    if len(chosen) > 1 and now is not None and window.next_open(now) is None and day_set:
        return CallingWindow(zones=(fallback or chosen[0],), days=day_set, start=start, end=end)
    return window


def _zones(names: Sequence[str]) -> tuple[ZoneInfo, ...]:
    found = [zone(n) for n in sorted(set(names)) if n and n != "Etc/Unknown"]
    return tuple(z for z in found if z is not None)
