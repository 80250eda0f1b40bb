"""How a SIP final response becomes an outcome (ADR 0031 has the table and the reasons)."""

from __future__ import annotations

from shared.outcomes import Outcome

BUSY = frozenset({486, 600})
INVALID = frozenset({410, 484, 604})
UNREACHABLE = frozenset({404, 480})
BLOCKED = frozenset({403, 603})
REQUEST_TERMINATED = 487
REQUEST_TIMEOUT = 408


def outcome_for_final_response(
    status_code: int, *, had_provisional: bool, cancelled_by_us: bool = False
) -> Outcome:
    """The outcome of an INVITE that ended with `status_code` and was never answered.

    `had_provisional` says a 1xx came back: the far end was reached, so a timeout after it means nobody
    picked up (no answer), while a timeout with no response at all means the trunk did not answer us
    (system error: retried, not billed). `cancelled_by_us` marks our CANCEL after the ring timeout:
    no answer when it had rung.
    """
    if 200 <= status_code < 300:
        return Outcome.COMPLETED
    if cancelled_by_us or status_code == REQUEST_TERMINATED:
        return Outcome.NO_ANSWER if had_provisional else Outcome.SYSTEM_ERROR
    if status_code in BUSY:
        return Outcome.BUSY
    if status_code in INVALID:
        return Outcome.INVALID_NUMBER
    if status_code in UNREACHABLE:
        return Outcome.UNREACHABLE
    if status_code in BLOCKED:
        return Outcome.CARRIER_BLOCKED
    if status_code == REQUEST_TIMEOUT:
        return Outcome.NO_ANSWER if had_provisional else Outcome.SYSTEM_ERROR
    # Everything else (other 4xx, every 5xx, other 6xx, local transport errors) says nothing about the
    # recipient: a system error, retried and not billed.
    return Outcome.SYSTEM_ERROR
