"""Calls-per-second as a hard sliding window plus smoothing.

`StartWindow` is the guarantee: it keeps the log of recent start times and admits a start only if no window
of `span` seconds (one second, widened by a safety margin) would then hold more than the plan allows. A leaky
bucket alone would let a full bucket burst on top of a busy second; a log cannot.

`Pacer` spreads starts inside the window (a token bucket holding half a second of tokens, enough to
bridge a slow round without losing rate), so the dialers receive a steady stream rather than one burst at
the top of every second.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

SAFETY_MARGIN_SECONDS = 0.02
"""Added to the one-second span: publish and consume jitter must not push two windows' starts into one."""


def window_of(calls_per_second: float) -> tuple[float, int]:
    """(span in seconds, starts allowed per span) for a plan's rate; below 1/s the span widens instead."""
    if calls_per_second >= 1:
        return 1.0, math.floor(calls_per_second)
    return 1.0 / calls_per_second, 1


@dataclass
class StartWindow:
    """The log of start times (seconds, any monotonic or wall clock) of one workspace."""

    margin: float = SAFETY_MARGIN_SECONDS
    _starts: deque[float] = field(default_factory=deque)

    def allowance(self, now: float, calls_per_second: float) -> int:
        """How many starts may happen at `now` without any window of the span holding too many."""
        span, limit = window_of(calls_per_second)
        self._forget(now - span - self.margin)
        return max(0, limit - len(self._starts))

    def record(self, now: float, count: int = 1) -> None:
        self._starts.extend([now] * count)

    def free_at(self, now: float, calls_per_second: float) -> float:
        """The earliest time a start is allowed again (now if one is allowed now)."""
        span, limit = window_of(calls_per_second)
        self._forget(now - span - self.margin)
        if len(self._starts) < limit:
            return now
        # The (len - limit + 1)-th oldest start must leave the window before one more fits.
        return self._starts[len(self._starts) - limit] + span + self.margin

    def hold_until(self, until: float, calls_per_second: float) -> None:
        """Count the window as full until `until` (a new owner does not know its predecessor's starts)."""
        span, limit = window_of(calls_per_second)
        self._starts.clear()
        self.record(until - span - self.margin, limit)

    def _forget(self, before: float) -> None:
        # Strictly older than the span plus margin: a start exactly at the edge still counts.
        while self._starts and self._starts[0] < before:
            self._starts.popleft()


@dataclass
class Pacer:
    """A token bucket at the plan's rate holding `burst_seconds` of tokens (at least one)."""

    burst_seconds: float = 0.5
    _tokens: float = 0.0
    _at: float | None = None

    def available(self, now: float, calls_per_second: float) -> int:
        capacity = max(1.0, calls_per_second * self.burst_seconds)
        if self._at is None:
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._at) * calls_per_second)
        self._at = now
        return math.floor(self._tokens + 1e-9)

    def take(self, count: int) -> None:
        self._tokens -= count

    def next_token_at(self, now: float, calls_per_second: float) -> float:
        missing = 1.0 - self._tokens
        return now if missing <= 0 else now + missing / calls_per_second


@dataclass
class StartRate:
    """Both together: what the dispatcher asks before each round of starts."""

    window: StartWindow = field(default_factory=StartWindow)
    pacer: Pacer = field(default_factory=Pacer)

    def allowance(self, now: float, calls_per_second: float) -> int:
        return min(self.window.allowance(now, calls_per_second), self.pacer.available(now, calls_per_second))

    def record(self, now: float, count: int) -> None:
        if count > 0:
            self.window.record(now, count)
            self.pacer.take(count)

    def next_start_at(self, now: float, calls_per_second: float) -> float:
        return max(
            self.window.free_at(now, calls_per_second), self.pacer.next_token_at(now, calls_per_second)
        )
