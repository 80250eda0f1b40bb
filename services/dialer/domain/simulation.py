"""The simulated telephone network: a seeded model of how calls go, with no network at all.

Each attempt's fate is drawn from its own random stream, seeded with the deployment's seed and the attempt
id, so a given seed gives the same outcome and call length for an attempt whatever order calls are placed
in and however many dialers share the work. Test numbers (docs/test-numbers.md) always give one outcome.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dialer.domain.call import AnsweredBy, OutboundCall
from shared.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """How one simulated call unfolds, in simulated seconds (the adapter applies the time scale)."""

    outcome: Outcome
    setup_seconds: float
    """INVITE to first response: ringing, or the final answer for calls that never ring."""
    rings: bool
    ring_seconds: float
    """Ringing to answer (or to giving up, for no answer)."""
    talk_seconds: float
    """Answer to hang-up; 0 when the call is not answered."""
    answered_by: AnsweredBy
    provider_code: str
    provider_reason: str

    @property
    def answered(self) -> bool:
        return self.outcome in ANSWERED


ANSWERED = frozenset({Outcome.COMPLETED, Outcome.VOICEMAIL, Outcome.OPTED_OUT})

DEFAULT_MIX: tuple[tuple[Outcome, float], ...] = (
    (Outcome.COMPLETED, 0.58),
    (Outcome.VOICEMAIL, 0.12),
    (Outcome.NO_ANSWER, 0.12),
    (Outcome.BUSY, 0.07),
    (Outcome.UNREACHABLE, 0.04),
    (Outcome.INVALID_NUMBER, 0.02),
    (Outcome.CARRIER_BLOCKED, 0.02),
    (Outcome.OPTED_OUT, 0.01),
    (Outcome.SYSTEM_ERROR, 0.02),
)
"""A plausible outbound campaign: most calls connect, a quarter ring out or hit voicemail."""


def parse_mix(text: str) -> tuple[tuple[Outcome, float], ...]:
    """`completed=0.8,busy=0.2` as a mix (empty: DEFAULT_MIX). Raises ValueError naming the bad item."""
    if not text.strip():
        return DEFAULT_MIX
    mix: list[tuple[Outcome, float]] = []
    for item in text.split(","):
        name, sep, weight = item.partition("=")
        try:
            outcome = Outcome(name.strip())
            value = float(weight)
        except ValueError:
            raise ValueError(
                f"outcome mix item {item.strip()!r}: expected outcome=weight with an outcome of "
                f"{', '.join(o.value for o in Outcome)}"
            ) from None
        if not sep or value < 0:
            raise ValueError(f"outcome mix item {item.strip()!r}: the weight must be a number >= 0")
        mix.append((outcome, value))
    if sum(w for _, w in mix) <= 0:
        raise ValueError("the outcome mix needs at least one positive weight")
    return tuple(mix)


# The provider codes a SIP trunk would give for each outcome (ADR 0031), so simulated results look real.
_CODES: dict[Outcome, tuple[str, str]] = {
    Outcome.COMPLETED: ("200", "OK"),
    Outcome.VOICEMAIL: ("200", "OK (answering machine)"),
    Outcome.OPTED_OUT: ("200", "OK (recipient opted out)"),
    Outcome.NO_ANSWER: ("487", "Request Terminated (ring timeout)"),
    Outcome.BUSY: ("486", "Busy Here"),
    Outcome.UNREACHABLE: ("480", "Temporarily Unavailable"),
    Outcome.INVALID_NUMBER: ("604", "Does Not Exist Anywhere"),
    Outcome.CARRIER_BLOCKED: ("603", "Decline"),
    Outcome.SYSTEM_ERROR: ("503", "Service Unavailable"),
}

_UNLIMITED = math.inf


@dataclass(frozen=True, slots=True)
class TestNumber:
    """A number whose call always goes one way."""

    outcome: Outcome
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    """`math.inf` talks until the agent's maximum call duration."""
    description: str = ""


TEST_NUMBERS: dict[str, TestNumber] = {
    "+12025550100": TestNumber(Outcome.COMPLETED, 2.0, 30.0, "answered by a person, 30 s conversation"),
    "+12025550101": TestNumber(Outcome.VOICEMAIL, 5.0, 20.0, "answered by voicemail, 20 s message"),
    "+12025550102": TestNumber(Outcome.NO_ANSWER, description="rings until the ring timeout"),
    "+12025550103": TestNumber(Outcome.BUSY, description="busy (486)"),
    "+12025550104": TestNumber(Outcome.UNREACHABLE, description="temporarily unavailable (480)"),
    "+12025550105": TestNumber(Outcome.INVALID_NUMBER, description="does not exist (604)"),
    "+12025550106": TestNumber(Outcome.CARRIER_BLOCKED, description="declined by the carrier (603)"),
    "+12025550107": TestNumber(Outcome.OPTED_OUT, 2.0, 8.0, "answered; the person asks not to be called"),
    "+12025550108": TestNumber(Outcome.SYSTEM_ERROR, description="the trunk fails (503)"),
    "+12025550109": TestNumber(
        Outcome.COMPLETED, 0.0, _UNLIMITED, "answers at once, talks until the agent's maximum duration"
    ),
}
"""Fictional NANP numbers (555-01XX is reserved for fiction) that pass `phonenumbers.is_valid_number`."""


class Draws:
    """An attempt's own short random stream: eight uniform draws from a BLAKE2b digest of the seed and the
    attempt id (a call takes at most five). Seeding a `random.Random` per call cost 9 µs of the dialer's
    time a call; this costs under 3."""

    __slots__ = ("_digest", "_next")

    def __init__(self, seed: str) -> None:
        self._digest = hashlib.blake2b(seed.encode(), digest_size=64).digest()
        self._next = 0

    def random(self) -> float:
        """In [0, 1), 53 bits like `random.random`."""
        at = self._next
        if at >= 64:
            raise RuntimeError("an attempt's draws are used up")  # pragma: no cover - at most five used
        self._next = at + 8
        return (int.from_bytes(self._digest[at : at + 8], "little") >> 11) / 9007199254740992.0

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def lognormvariate(self, mu: float, sigma: float) -> float:
        # Box-Muller: two uniforms make one standard normal.
        u1, u2 = 1.0 - self.random(), self.random()
        normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        return math.exp(mu + sigma * normal)

    def pick(self, items: Sequence[Outcome], cum_weights: Sequence[float]) -> Outcome:
        return items[bisect.bisect_right(cum_weights, self.random() * cum_weights[-1])]


def _setup_seconds(outcome: Outcome, rng: Draws) -> float:
    if outcome in (Outcome.INVALID_NUMBER, Outcome.CARRIER_BLOCKED, Outcome.SYSTEM_ERROR):
        return rng.uniform(0.1, 0.6)
    if outcome is Outcome.UNREACHABLE:
        return rng.uniform(1.0, 4.0)
    return rng.uniform(0.3, 1.5)


def _talk_seconds(outcome: Outcome, rng: Draws) -> float:
    if outcome is Outcome.COMPLETED:
        # Conversations are long-tailed: a log-normal with a 45 s median, at least a few seconds.
        return max(3.0, rng.lognormvariate(math.log(45.0), 0.8))
    if outcome is Outcome.VOICEMAIL:
        return rng.uniform(15.0, 40.0)
    if outcome is Outcome.OPTED_OUT:
        return rng.uniform(5.0, 20.0)
    return 0.0


class CallSimulator:
    """Plans simulated calls; deterministic for a given seed and attempt id."""

    def __init__(self, seed: int, mix: Sequence[tuple[Outcome, float]] = DEFAULT_MIX) -> None:
        if not mix or any(weight < 0 for _, weight in mix) or sum(w for _, w in mix) <= 0:
            raise ValueError("the outcome mix needs at least one positive weight")
        self._seed = seed
        self._outcomes = [outcome for outcome, _ in mix]
        # Cumulative once here rather than in every draw: `choices` would accumulate the weights per call,
        # and the draws are the same either way.
        self._cum_weights = list(itertools.accumulate(weight for _, weight in mix))

    def plan(self, call: OutboundCall) -> SimulatedCall:
        """How `call` goes: a test number's fixed behaviour, or a draw from this attempt's own stream."""
        rng = Draws(f"{self._seed}:{call.attempt_id}")
        fixed = TEST_NUMBERS.get(call.to)
        if fixed is not None:
            outcome = fixed.outcome
            setup = 0.0 if fixed.outcome in ANSWERED else _setup_seconds(outcome, rng)
            ring, talk = fixed.ring_seconds, fixed.talk_seconds
        else:
            outcome = rng.pick(self._outcomes, self._cum_weights)
            setup = _setup_seconds(outcome, rng)
            ring = rng.uniform(2.0, 12.0) if outcome in ANSWERED else 0.0
            talk = _talk_seconds(outcome, rng)
        return self._within_limits(call, outcome, setup, ring, talk)

    @staticmethod
    def _within_limits(
        call: OutboundCall, outcome: Outcome, setup: float, ring: float, talk: float
    ) -> SimulatedCall:
        rings = outcome in ANSWERED or outcome is Outcome.NO_ANSWER
        if outcome is Outcome.NO_ANSWER or (outcome in ANSWERED and ring >= call.ring_timeout_seconds):
            # Nobody picks up before our ring timeout: we cancel, whatever the far end would have done.
            outcome, ring, talk = Outcome.NO_ANSWER, call.ring_timeout_seconds, 0.0
        talk = min(talk, float(call.max_call_seconds)) if outcome in ANSWERED else 0.0
        code, reason = _CODES[outcome]
        if outcome in ANSWERED and talk >= call.max_call_seconds:
            reason = f"{reason}; hung up at the agent's maximum call duration"
        answered_by: AnsweredBy = (
            "machine" if outcome is Outcome.VOICEMAIL else "human" if outcome in ANSWERED else "unknown"
        )
        return SimulatedCall(
            outcome=outcome,
            setup_seconds=setup,
            rings=rings,
            ring_seconds=ring if rings else 0.0,
            talk_seconds=talk,
            answered_by=answered_by,
            provider_code=code,
            provider_reason=reason,
        )
