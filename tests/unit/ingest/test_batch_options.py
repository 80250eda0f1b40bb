"""Start-form options: each bad value is a 400 naming its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

import pytest

from ingest.domain import batch_options as options
from ingest.domain.batch_options import InvalidOption
from shared.events import RetryPolicySpec

pytestmark = pytest.mark.unit


def test_scheduled_at_is_utc_iso8601() -> None:
    assert options.parse_scheduled_at("2026-01-31T14:00:00Z") == datetime(2026, 1, 31, 14, tzinfo=UTC)
    assert options.parse_scheduled_at("2026-01-31T14:00:00.250Z").microsecond == 250_000


@pytest.mark.parametrize(
    "value", ["2026-01-31 14:00:00", "2026-01-31T14:00:00+02:00", "tomorrow", "2026-02-30T00:00:00Z"]
)
def test_bad_scheduled_at_names_the_field(value: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        options.parse_scheduled_at(value)
    assert caught.value.field == "scheduledAt"


def test_smart_callback_gaps_become_seconds() -> None:
    policy = options.parse_smart_callback(
        json.dumps({"enabled": True, "maxAttempts": 3, "gaps": [{"days": 1, "hours": 2}, {"hours": 0.5}]})
    )
    assert policy == RetryPolicySpec(max_attempts=3, gaps_seconds=(93_600, 1_800))
    assert options.parse_smart_callback('{"enabled": false, "maxAttempts": 9}') == RetryPolicySpec()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1]",
        '{"maxAttempts": 0}',
        '{"maxAttempts": true}',
        '{"gaps": [{"weeks": 1}]}',
        '{"gaps": [{"days": -1}]}',
        '{"enabled": "yes"}',
        '{"gaps": [{"days": 31}]}',
    ],
)
def test_bad_smart_callback_names_the_field(value: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        options.parse_smart_callback(value)
    assert caught.value.field == "smartCallbackConfig"


def test_retry_policy_overrides_the_smart_callback() -> None:
    base = RetryPolicySpec(max_attempts=3, gaps_seconds=(60,))
    policy = options.parse_retry_policy('{"gapsSeconds": [600, 3600], "retryVoicemail": true}', base)
    assert policy == RetryPolicySpec(max_attempts=3, gaps_seconds=(600, 3600), retry_voicemail=True)
    with pytest.raises(InvalidOption, match="unknown"):
        options.parse_retry_policy('{"attempts": 2}', base)


def test_calling_window() -> None:
    window = options.parse_calling_window(
        '{"days": [4, 0, 0], "start": "09:00", "end": "20:30", "timezone": "Europe/Paris"}'
    )
    assert window.days == (0, 4) and window.start == time(9) and window.end == time(20, 30)
    assert window.fallback_timezone == "Europe/Paris"


@pytest.mark.parametrize(
    "value",
    [
        '{"days": []}',
        '{"days": [7]}',
        '{"start": "9am"}',
        '{"start": "20:00", "end": "09:00"}',
        '{"timezone": "Mars/Base"}',
        '{"timezone": "../etc"}',
        '{"hours": 1}',
    ],
)
def test_bad_calling_window_names_the_field(value: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        options.parse_calling_window(value)
    assert caught.value.field == "callingWindow"


def test_webhook_and_flags() -> None:
    assert options.parse_webhook_url(" https://example.com/hook ") == "https://example.com/hook"
    for bad in ("ftp://x", "example.com", "http://"):
        with pytest.raises(InvalidOption):
            options.parse_webhook_url(bad)
    assert options.parse_flag("dryRun", "TRUE") and not options.parse_flag("dryRun", "0")
    with pytest.raises(InvalidOption):
        options.parse_flag("dryRun", "maybe")
