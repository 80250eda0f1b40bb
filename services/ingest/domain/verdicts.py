"""What happens to each row: accepted, or skipped as an invalid number, a duplicate or a do-not-call entry."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from ingest.domain.phone import INVALID_MARK, invalid_parts
from shared.outcomes import SkipReason


@dataclass(frozen=True, slots=True)
class Verdict:
    """One row's fate; `phone_number` is E.164 when it parsed, else the raw cell."""

    row_number: int
    phone_number: str
    skip: SkipReason | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.skip is None


class RowJudge:
    """Judges rows in file order. The first row with a number is accepted; later rows with the same number
    are duplicates of it. A do-not-call number is skipped; its repeats are duplicates like any other."""

    def __init__(self, do_not_call: Set[str]) -> None:
        self._do_not_call = do_not_call
        self._first_row: dict[int, int] = {}
        self.accepted = 0
        self.skipped: dict[SkipReason, int] = dict.fromkeys(SkipReason, 0)

    def judge(self, row_number: int, normalised: str) -> Verdict:
        """`normalised` is a `normalise_many` result: E.164, or the problem and the raw cell."""
        return self.skip_of(row_number, normalised) or Verdict(row_number, normalised)

    def skip_of(self, row_number: int, normalised: str) -> Verdict | None:
        """Like `judge`, but None for an accepted row: publishing builds nothing for the rows it accepts
        (their events are already encoded), and a quarter of a million verdicts cost a second."""
        if normalised.startswith(INVALID_MARK):
            problem, raw = invalid_parts(normalised)
            return self._skip(Verdict(row_number, raw, SkipReason.INVALID_NUMBER, problem))
        # E.164 digits as an int: a third of the memory of the string for 250,000 numbers.
        first = self._first_row.setdefault(int(normalised[1:]), row_number)
        if first != row_number:
            return self._skip(
                Verdict(row_number, normalised, SkipReason.DUPLICATE, f"same number as row {first}")
            )
        if normalised in self._do_not_call:
            return self._skip(
                Verdict(
                    row_number, normalised, SkipReason.DO_NOT_CALL, "the number is on the do-not-call list"
                )
            )
        self.accepted += 1
        return None

    def _skip(self, verdict: Verdict) -> Verdict:
        assert verdict.skip is not None
        self.skipped[verdict.skip] += 1
        return verdict

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())
