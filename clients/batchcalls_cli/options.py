"""Parsing of the start options a person types: when (`--at`), the calling window (`--window`) and the retry
ladder (`--retry`). Pure functions: the current time is passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^(\d+)\s*(s|sec|m|min|h|d)?$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, None: 1}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class OptionError(ValueError):
    """A start option that cannot be understood; the message says what was expected."""


@dataclass(frozen=True)
class CallingWindowChoice:
    """Local calling hours: ISO weekdays (0 = Monday), start and end `HH:MM`, and an optional IANA zone used
    when a number's own zone is unknown."""

    days: tuple[int, ...]
    start: str
    end: str
    timezone: str | None = None


@dataclass(frozen=True)
class RetryChoice:
    """At most `max_attempts` attempts, waiting `gaps_seconds[i]` before attempt i + 2 (the last gap
    repeats)."""

    max_attempts: int
    gaps_seconds: tuple[int, ...] = ()


def parse_duration(text: str) -> int:
    """`90`, `90s`, `5m`, `2h`, `1d` → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise OptionError(f"not a duration: {text!r} (use e.g. 30s, 5m, 2h, 1d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_at(text: str, now: datetime) -> str:
    """`--at` → the API's `scheduledAt` (`YYYY-MM-DDTHH:MM:SSZ`, UTC). Accepts ISO-8601 (a time without an
    offset is taken as UTC) or a delay from now such as `+10m` / `in 2h`."""
    value = text.strip()
    relative = value.removeprefix("+").removeprefix("in ").strip()
    if value.startswith(("+", "in ")):
        moment = now + timedelta(seconds=parse_duration(relative))
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError as exc:
            raise OptionError(
                f"not a time: {text!r} (use 2026-05-01T09:00:00Z, '2026-05-01 09:00' (UTC), or +10m)"
            ) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_days(text: str) -> tuple[int, ...]:
    spec = text.strip().lower()
    if spec in ("all", "daily", "every", "*"):
        return tuple(range(7))
    if spec in ("weekdays", "workdays"):
        return (0, 1, 2, 3, 4)
    if spec == "weekends":
        return (5, 6)
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        try:
            lo = DAY_NAMES.index(first[:3])
            hi = DAY_NAMES.index(last[:3]) if last else lo
        except ValueError as exc:
            raise OptionError(f"not a day: {part!r} (use mon..sun, mon-fri, weekdays, all)") from exc
        span = range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)]
        days.update(span)
    return tuple(sorted(days))


def parse_window(text: str) -> CallingWindowChoice:
    """`--window "mon-fri 09:00-17:00"`, `"all 00:00-23:59 UTC"`, `"09:00-20:00"` (every day), with an
    optional trailing IANA zone for numbers whose own zone is unknown."""
    parts = text.split()
    if not parts:
        raise OptionError("empty calling window")
    days: tuple[int, ...] = tuple(range(7))
    if not _CLOCK.match(parts[0].split("-")[0]):
        days = _parse_days(parts.pop(0))
    if not parts:
        raise OptionError(f"no hours in calling window {text!r} (use e.g. 'mon-fri 09:00-17:00')")
    start, sep, end = parts.pop(0).partition("-")
    if not sep or not _CLOCK.match(start) or not _CLOCK.match(end):
        raise OptionError(f"not an HH:MM-HH:MM range: {text!r}")
    if _minutes(start) >= _minutes(end):
        raise OptionError(f"the window must end after it starts: {start}-{end}")
    zone = parts.pop(0) if parts else None
    if parts:
        raise OptionError(f"unexpected {' '.join(parts)!r} in calling window {text!r}")
    return CallingWindowChoice(days=days, start=_pad(start), end=_pad(end), timezone=zone)


def parse_retry(text: str) -> RetryChoice:
    """`--retry 3` (three attempts, the default waits) or `--retry 3:30s,5m` (waits of 30 s, then 5 min)."""
    count, _, gaps = text.partition(":")
    if not count.strip().isdigit() or not 1 <= int(count) <= 20:
        raise OptionError(f"not an attempt count from 1 to 20: {count!r} (use e.g. 3 or 3:30s,5m)")
    ladder = tuple(parse_duration(gap) for gap in gaps.split(",") if gap.strip()) if gaps else ()
    return RetryChoice(max_attempts=int(count), gaps_seconds=ladder)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _pad(clock: str) -> str:
    hours, minutes = clock.split(":")
    return f"{int(hours):02d}:{minutes}"
