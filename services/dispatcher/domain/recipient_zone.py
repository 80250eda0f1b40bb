"""Which time zones a phone number may ring in, and the queue lane that groups numbers sharing them.

Contacts are queued per lane (batch + lane key): every number in a lane has the same calling window, so a
closed window holds its whole lane without a per-contact timer, and other lanes keep dialing.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_timezone

UNKNOWN = "Etc/Unknown"


def lane_key(e164: str) -> str:
    """`Zone|Zone` for a number whose zones are known, else `+<country code>` (or `?` when unparsable).

    Keys never contain `.` or start with `$`, so they can be document keys on FerretDB."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "?"
    zones = sorted(z for z in phone_timezone.time_zones_for_number(parsed) if z != UNKNOWN)
    if zones:
        return "|".join(zones)
    return f"+{parsed.country_code}"


def lane_zones(key: str) -> tuple[str, ...]:
    """The zones the number itself names (empty for a `+<cc>` or `?` lane)."""
    if key.startswith(("+", "?")) or not key:
        return ()
    return tuple(key.split("|"))


@lru_cache(maxsize=512)
def country_zones(key: str) -> tuple[str, ...]:
    """Every zone of the lane's country, for `+<cc>` lanes; used when the batch names no fallback zone."""
    if not key.startswith("+") or not key[1:].isdigit():
        return ()
    number = phonenumbers.PhoneNumber(country_code=int(key[1:]), national_number=0)
    zones = phone_timezone._country_level_time_zones_for_number(number)
    return tuple(z for z in zones if z != UNKNOWN)
