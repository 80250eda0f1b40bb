"""Calls-per-second as start slots: each call request carries the time its call may start (`not_before`).

The dispatcher plans a workspace's starts itself instead of trusting that requests reach the dialers evenly:
slots are spaced `(span + margin) / limit` apart, planned up to `lead` seconds ahead so that a slow round
does not leave the plan's rate unused, and a slot is only planned if the window of `span + margin` seconds
that ends at it holds fewer than `limit` slots (this guards plan changes, where the spacing alone would not).
The dialer starts each call within `START_TOLERANCE_SECONDS` after its slot, or not at all; since the margin
is more than that tolerance, no one-second window of real starts holds more than the plan allows.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from shared.events import START_TOLERANCE_SECONDS

SAFETY_MARGIN_SECONDS = START_TOLERANCE_SECONDS + 0.005
"""Added to the span between slots that could share a window: a start the dialer makes late within its
tolerance must not bring two windows' starts into one (strictly more than the tolerance, so even the
latest allowed start leaves a gap)."""

LEAD_SECONDS = 0.5
"""How far ahead of the earliest possible start slots are planned: the slack for the hop from the
dispatcher to a dialer's call task (fetch and claim), and short, because a request waiting in a dialer
holds a concurrent-call lease and is not stopped by a cancel or pause."""

DIALER_HOP_SECONDS = 0.25
"""Added to the publish lag before the first slot: a dialer's fetch and claim (a MongoDB insert) of the
request, measured at 0.1-0.3 s on a loaded machine; slots planned earlier were missed."""

MAX_DIALER_HOP_SECONDS = 4.0
"""The furthest a workspace's learned hop (DialerPace) plans slots beyond the publish lag."""

MAX_PUBLISH_LAG_SECONDS = 1.0
"""The most a workspace's expected publish lag (round start to acknowledged request) shifts its slots."""


def window_of(calls_per_second: float) -> tuple[float, int]:
    """(span in seconds, starts allowed per span) for a plan's rate; below 1/s the span widens instead."""
    if calls_per_second >= 1:
        return 1.0, math.floor(calls_per_second)
    return 1.0 / calls_per_second, 1


@dataclass
class StartSlots:
    """The planned start times (seconds on the wall clock, non-decreasing) of one workspace. `now` is the
    earliest time a call requested now could start (the clock plus the expected publish lag)."""

    lead: float = LEAD_SECONDS
    margin: float = SAFETY_MARGIN_SECONDS
    _slots: list[float] = field(default_factory=list)
    _floor: float = -math.inf
    """The latest `now` planned from: planning time never goes back (the caller's estimate of the
    earliest start may shrink), so no slot that could share a window with a new one was forgotten."""

    def take(self, now: float, calls_per_second: float, count: int) -> list[float]:
        """Plan up to `count` slots between `now` and `now + lead` and return them, earliest first."""
        now = self._floor = max(self._floor, now)
        span, limit = window_of(calls_per_second)
        self._forget(now - span - self.margin)
        planned: list[float] = []
        while len(planned) < count:
            slot = self._next(now, span, limit)
            if slot > now + self.lead:
                break
            self._slots.append(slot)
            planned.append(slot)
        return planned

    def give_back(self, count: int) -> None:
        """Unplan the latest `count` slots (taken, but fewer calls were requested than slots planned)."""
        if count > 0:
            del self._slots[-count:]

    def wait(self, now: float, calls_per_second: float) -> float:
        """Seconds until one more slot may be planned (0: one fits now)."""
        now = max(self._floor, now)
        span, limit = window_of(calls_per_second)
        self._forget(now - span - self.margin)
        return max(0.0, self._next(now, span, limit) - self.lead - now)

    def _next(self, now: float, span: float, limit: int) -> float:
        """The earliest time the next start may be planned for (`now` or later)."""
        width = span + self.margin
        slot = now
        if self._slots:
            slot = max(slot, self._slots[-1] + width / limit)
        # Slots already inside the window that would end at `slot`: the oldest of the last `limit` of them
        # has to leave it first (after a plan change the spacing of older slots may be denser).
        inside = len(self._slots) - bisect.bisect_right(self._slots, slot - width)
        if inside >= limit:
            slot = max(slot, self._slots[len(self._slots) - limit] + width)
        return slot

    def _forget(self, before: float) -> None:
        # The newest slot is always kept: it sets the spacing, and for plans below 1/s (one start per span,
        # a span that grows when the plan shrinks) it is the only one that can be in the window.
        keep = bisect.bisect_right(self._slots, before)
        if keep >= len(self._slots):
            keep = len(self._slots) - 1
        if keep > 0:
            del self._slots[:keep]


def expected_lag(previous: float, measured: float) -> float:
    """The publish lag to plan with after one more measurement: a rise is followed at once, a fall slowly
    (a decaying maximum), so one quick round after a slow one does not plan slots the next slow one misses."""
    return min(MAX_PUBLISH_LAG_SECONDS, max(measured, previous * 0.9, 0.0))


@dataclass
class DialerPace:
    """How fast the dialers actually keep up with one workspace's slots, learned from missed slots.

    A plan may allow more starts per second than the dialers can place (a high plan, few dialers, or a
    dialer backlog after a restart). Planning at the plan's rate would then only queue requests that miss
    their slots and come back. So the rate slots are planned at backs off by half when slots are missed
    (at most once a second, however many misses one step brings) and grows back by a tenth each second
    without a miss, up to the plan (additive-increase/multiplicative-decrease, as TCP does). It only ever
    lowers the plan's rate, so the plan's limit holds whatever it learns."""

    cap: float | None = None
    """Calls per second to plan at; None: the plan's own rate."""
    hop: float = DIALER_HOP_SECONDS
    """Seconds from a request's publication to its dialer being ready to start it: slots begin after it.
    Doubles on misses (up to MAX_DIALER_HOP_SECONDS) and decays back to the default without them."""
    _changed_at: float = float("-inf")

    def rate(self, calls_per_second: float) -> float:
        return calls_per_second if self.cap is None else min(self.cap, calls_per_second)

    def missed(self, now: float, calls_per_second: float) -> None:
        if now - self._changed_at < 1.0:
            return
        self.cap = max(1.0, self.rate(calls_per_second) / 2)
        self.hop = min(MAX_DIALER_HOP_SECONDS, self.hop * 2)
        self._changed_at = now

    def kept(self, now: float, calls_per_second: float) -> None:
        if (self.cap is None and self.hop <= DIALER_HOP_SECONDS) or now - self._changed_at < 1.0:
            return
        self.hop = max(DIALER_HOP_SECONDS, self.hop * 0.9)
        if self.cap is None:
            self._changed_at = now
            return
        grown = self.cap * 1.1 + 1.0
        self.cap = None if grown >= calls_per_second else grown
        self._changed_at = now
