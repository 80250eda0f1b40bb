"""What happens after an attempt ends: retry after a wait, or finish with this outcome (DESIGN.md defaults).

- completed, invalid_number, carrier_blocked, opted_out: finish.
- busy, no_answer: retry while attempts remain, waiting the ladder's gap.
- voicemail: retry only when the batch asks (`retry_voicemail`).
- unreachable: retry once per contact.
- system_error: retry after a short wait without using the contact's attempt budget (our fault, not theirs),
  up to SYSTEM_ERROR_RETRIES times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.outcomes import Outcome

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_GAPS_SECONDS: tuple[int, ...] = (300, 1800)
SYSTEM_ERROR_RETRIES = 3
SYSTEM_ERROR_GAP_SECONDS = 30

_NEVER = frozenset({Outcome.COMPLETED, Outcome.INVALID_NUMBER, Outcome.CARRIER_BLOCKED, Outcome.OPTED_OUT})


@dataclass(frozen=True)
class Retry:
    """Dial again after `wait_seconds`; the next attempt has a new number and id."""

    wait_seconds: int


@dataclass(frozen=True)
class Finish:
    """No more attempts: the contact ends with `outcome`."""

    outcome: Outcome


Decision = Retry | Finish


@dataclass(frozen=True)
class RetryPolicy:
    """A batch's retry rules. `gaps_seconds[i]` is the wait after the (i+1)-th counted attempt; the last gap
    repeats when the ladder is shorter than the attempts."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    gaps_seconds: tuple[int, ...] = DEFAULT_GAPS_SECONDS
    retry_voicemail: bool = False

    @classmethod
    def of(
        cls, max_attempts: int | None, gaps_seconds: Sequence[int] | None, retry_voicemail: bool
    ) -> RetryPolicy:
        """The batch's policy: its overrides where given, the defaults elsewhere."""
        gaps = tuple(max(0, int(g)) for g in gaps_seconds) if gaps_seconds else DEFAULT_GAPS_SECONDS
        return cls(max_attempts or DEFAULT_MAX_ATTEMPTS, gaps, retry_voicemail)

    def decide(self, outcome: Outcome, previous: Sequence[Outcome] = ()) -> Decision:
        """Decide after an attempt ended with `outcome`; `previous` are the earlier attempts' outcomes."""
        history = [*previous, outcome]
        if outcome is Outcome.SYSTEM_ERROR:
            errors = sum(1 for o in history if o is Outcome.SYSTEM_ERROR)
            return Retry(SYSTEM_ERROR_GAP_SECONDS) if errors <= SYSTEM_ERROR_RETRIES else Finish(outcome)
        if outcome in _NEVER:
            return Finish(outcome)
        if outcome is Outcome.VOICEMAIL and not self.retry_voicemail:
            return Finish(outcome)
        if outcome is Outcome.UNREACHABLE and sum(1 for o in history if o is Outcome.UNREACHABLE) > 1:
            return Finish(outcome)
        counted = sum(1 for o in history if o is not Outcome.SYSTEM_ERROR)
        if counted >= self.max_attempts:
            return Finish(outcome)
        return Retry(self.gaps_seconds[min(counted - 1, len(self.gaps_seconds) - 1)])
