"""Time as the projection sees it: integer epoch milliseconds, the unit every API response uses.

Integers (not datetimes) keep a document identical after a round trip through MongoDB, whose dates hold
milliseconds only, so "did this event change the document?" is a plain equality.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Exact integer milliseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // _MS


def utc_day(ms: int) -> str:
    """The UTC calendar day of a moment, `YYYY-MM-DD`."""
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d")


def iso(ms: int | None) -> str:
    """ISO-8601 UTC with milliseconds, or an empty string."""
    if ms is None:
        return ""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
