"""The optional form fields of a start request, parsed into the contract's value objects.

Each parser raises `InvalidOption(field, message)` so the API can answer 400 naming the field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.events import CallingWindowSpec, RetryPolicySpec

_UTC_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_ATTEMPTS = 20
MAX_GAP_SECONDS = 30 * 86_400


class InvalidOption(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_scheduled_at(value: str) -> datetime:
    """UTC ISO-8601 as the reference documents it: `YYYY-MM-DDTHH:MM:SSZ` (fractions allowed)."""
    text = value.strip()
    if not _UTC_TIMESTAMP.match(text):
        raise InvalidOption("scheduledAt", "must be a UTC ISO-8601 time like 2026-01-31T14:00:00Z")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidOption("scheduledAt", f"not a real date and time: {exc}") from exc


def _json_object(field: str, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidOption(field, "must be a JSON object") from exc
    if not isinstance(parsed, dict):
        raise InvalidOption(field, "must be a JSON object")
    return parsed


def _number(field: str, value: object, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise InvalidOption(field, f"'{name}' must be a non-negative number")
    return float(value)


def _attempts(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise InvalidOption(field, f"'maxAttempts' must be an integer from 1 to {MAX_ATTEMPTS}")
    return value


def _gap_seconds(field: str, gap: object) -> int:
    if not isinstance(gap, dict):
        raise InvalidOption(field, 'each gap must be an object like {"days": 0, "hours": 4}')
    unknown = set(gap) - {"days", "hours", "minutes", "seconds"}
    if unknown:
        raise InvalidOption(field, f"unknown gap field(s): {', '.join(sorted(map(str, unknown)))}")
    seconds = (
        _number(field, gap.get("days", 0), name="days") * 86_400
        + _number(field, gap.get("hours", 0), name="hours") * 3_600
        + _number(field, gap.get("minutes", 0), name="minutes") * 60
        + _number(field, gap.get("seconds", 0), name="seconds")
    )
    if seconds > MAX_GAP_SECONDS:
        raise InvalidOption(field, "a gap may be at most 30 days")
    return round(seconds)


def _gaps(field: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_ATTEMPTS:
        raise InvalidOption(field, f"'gaps' must be a list of at most {MAX_ATTEMPTS} gaps")
    return tuple(_gap_seconds(field, gap) for gap in value)


def parse_smart_callback(value: str) -> RetryPolicySpec:
    """`{"enabled", "maxAttempts", "gaps": [{"days", "hours"}]}` → a retry policy; disabled = defaults."""
    field = "smartCallbackConfig"
    config = _json_object(field, value)
    enabled = config.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidOption(field, "'enabled' must be true or false")
    if not enabled:
        return RetryPolicySpec()
    return RetryPolicySpec(
        max_attempts=_attempts(field, config["maxAttempts"]) if "maxAttempts" in config else None,
        gaps_seconds=_gaps(field, config["gaps"]) if "gaps" in config else None,
    )


def parse_retry_policy(value: str, base: RetryPolicySpec) -> RetryPolicySpec:
    """Our richer form: `{"maxAttempts", "gapsSeconds" | "gaps", "retryVoicemail"}`; overrides `base`."""
    field = "retryPolicy"
    config = _json_object(field, value)
    unknown = set(config) - {"maxAttempts", "gapsSeconds", "gaps", "retryVoicemail"}
    if unknown:
        raise InvalidOption(field, f"unknown field(s): {', '.join(sorted(unknown))}")
    max_attempts = _attempts(field, config["maxAttempts"]) if "maxAttempts" in config else base.max_attempts
    gaps = base.gaps_seconds
    if "gapsSeconds" in config:
        raw = config["gapsSeconds"]
        if not isinstance(raw, list) or len(raw) > MAX_ATTEMPTS:
            raise InvalidOption(field, f"'gapsSeconds' must be a list of at most {MAX_ATTEMPTS} numbers")
        gaps = tuple(round(_number(field, g, name="gapsSeconds")) for g in raw)
        if any(g > MAX_GAP_SECONDS for g in gaps):
            raise InvalidOption(field, "a gap may be at most 30 days")
    elif "gaps" in config:
        gaps = _gaps(field, config["gaps"])
    voicemail = config.get("retryVoicemail", base.retry_voicemail)
    if not isinstance(voicemail, bool):
        raise InvalidOption(field, "'retryVoicemail' must be true or false")
    return RetryPolicySpec(max_attempts=max_attempts, gaps_seconds=gaps, retry_voicemail=voicemail)


def _clock(field: str, value: object, name: str) -> time:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidOption(field, f"'{name}' must be a time like \"09:00\"")
    return time(int(match.group(1)), int(match.group(2)))


def parse_calling_window(value: str) -> CallingWindowSpec:
    """`{"days": [0..6], "start": "09:00", "end": "20:00", "timezone": "Europe/Paris"}`.

    `timezone` is used only for numbers whose own zone cannot be told (the window is the recipient's)."""
    field = "callingWindow"
    config = _json_object(field, value)
    unknown = set(config) - {"days", "start", "end", "timezone"}
    if unknown:
        raise InvalidOption(field, f"unknown field(s): {', '.join(sorted(unknown))}")
    defaults = CallingWindowSpec()
    days = config.get("days", list(defaults.days))
    if (
        not isinstance(days, list)
        or not days
        or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days)
    ):
        raise InvalidOption(field, "'days' must be a non-empty list of weekdays 0 (Monday) to 6 (Sunday)")
    start = _clock(field, config["start"], "start") if "start" in config else defaults.start
    end = _clock(field, config["end"], "end") if "end" in config else defaults.end
    if start >= end:
        raise InvalidOption(field, "'start' must be before 'end'")
    zone = config.get("timezone")
    if zone is not None:
        if not isinstance(zone, str) or not zone:
            raise InvalidOption(field, "'timezone' must be an IANA zone name like \"Europe/Paris\"")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidOption(field, f"unknown time zone '{zone}'") from exc
    return CallingWindowSpec(days=tuple(sorted(set(days))), start=start, end=end, fallback_timezone=zone)


def parse_webhook_url(value: str) -> str:
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise InvalidOption("webhookUrl", "must be an http or https URL") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 2000:
        raise InvalidOption("webhookUrl", "must be an http or https URL")
    return text


def parse_flag(field: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise InvalidOption(field, "must be true or false")
