"""Calls-per-second as start slots: each call request carries the interval its call may start in
(`not_before` .. `start_by`).

The dispatcher plans a workspace's starts itself instead of trusting that requests reach the dialers evenly.
Each slot is an interval `[start, by]`: the dialer starts the call somewhere inside it, or not at all. A
slot may be planned at `start` only if fewer than `limit` planned slots end (`by`) at or after
`start - span - CLOCK_SLACK`: every window of one span that can hold this call's start can then hold at
most `limit - 1` others (they all start at or before it, and end after the window opens), whatever the
dialers' lateness inside each interval. Planned in increasing `start`, the rule holds for every window.

How long a slot stays open (`by - start`) is the slot's slack for a late dialer. Near the plan's rate it is
the short `START_TOLERANCE_SECONDS` (45 ms; a slot that ends later keeps its window occupied longer and so
costs rate). When a workspace is started far below its plan (a high plan, the dialers are the bottleneck)
the windows have room, and a slot gets up to `MAX_SLACK_SECONDS`: a busy dialer starting a call late then
still keeps the plan instead of missing the slot and sending it round again (docs/adr/0024).
Slots are spaced `(span + tolerance + CLOCK_SLACK) / limit` apart at the rate planned at, so a plan's
starts are spread over its window, not bunched at its start.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.events import START_TOLERANCE_SECONDS

CLOCK_SLACK_SECONDS = 0.005
"""Kept between the end of one window's slots and the next: clock resolution and rounding (a start at the
very end of its interval must not share a closed window with one a full span later)."""

MIN_TOLERANCE_SECONDS = 0.015
"""The shortest a slot is kept open at the plan's rate, however punctual the dialers have been (DialerPace
.tolerance): below it, one scheduling hiccup of the dialer's event loop misses the slot."""

LATENESS_DECAY = 0.99
"""Per start, how much of the latest-start estimate is kept (DialerPace.tolerance): a late start counts at
once, and is forgotten over a few hundred punctual ones."""

MAX_SLACK_SECONDS = 2.0
"""The longest a slot stays open when its workspace runs far below its plan: how late a backlogged dialer
may still start the call (a cancel or pause reaches such a request no later than this after its slot)."""

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


def handover_quiet_seconds(span: float, *, slots_known: bool) -> float:
    """How long a new owner of a workspace plans nothing. With its predecessor's open slots read back from
    their leases (`slots_known`), one window span: calls that already started and ended (their leases gone)
    started before the hand-over. Without them, the furthest a predecessor's slot may reach (its largest
    publish lag, learned hop, lead and slack) and one span after it."""
    if slots_known:
        return span + CLOCK_SLACK_SECONDS
    return (
        MAX_PUBLISH_LAG_SECONDS
        + MAX_DIALER_HOP_SECONDS
        + LEAD_SECONDS
        + MAX_SLACK_SECONDS
        + span
        + CLOCK_SLACK_SECONDS
    )


def window_of(calls_per_second: float) -> tuple[float, int]:
    """(span in seconds, starts allowed per span) for a plan's rate; below 1/s the span widens instead."""
    if calls_per_second >= 1:
        return 1.0, math.floor(calls_per_second)
    return 1.0 / calls_per_second, 1


def _spacing(calls_per_second: float, rate: float | None, tolerance: float) -> float:
    """Seconds between slots planned at `rate` (at most the plan's; None: the plan's own), each open for at
    least `tolerance`."""
    span, limit = window_of(min(rate or calls_per_second, calls_per_second))
    return (span + tolerance + CLOCK_SLACK_SECONDS) / limit


class Slot(NamedTuple):
    """When a call may start (seconds on the wall clock): not before `start`, not after `by`."""

    start: float
    by: float


def slack_for(recent: int, limit: int, span: float, tolerance: float = START_TOLERANCE_SECONDS) -> float:
    """How long a new slot stays open, given `recent` slots (this one included) in the span up to it, and at
    least `tolerance`.

    A workspace planning `recent` starts per span could keep slots open for `span * limit / recent - span`
    before the windows fill; half of that is given, so a workspace that speeds up meets slots that close
    sooner each round (the slack shrinks geometrically back to the tolerance) rather than a fixed point."""
    room = span * limit / max(recent, 1) - span
    return min(MAX_SLACK_SECONDS, max(tolerance, room / 2))


@dataclass
class StartSlots:
    """The planned start intervals of one workspace, `start` non-decreasing. `now` is the earliest time a
    call requested now could start (the clock plus the expected publish lag and the dialer's hop)."""

    lead: float = LEAD_SECONDS
    _slots: list[Slot] = field(default_factory=list)
    """In planned order (`start` non-decreasing)."""
    _ends: list[float] = field(default_factory=list)
    """The slots' `by`, sorted: how many of them are still open at a time is one bisection."""
    _busy_since: float = -math.inf
    """The first slot of the current run of slots without a gap of one span: until a whole span of them
    was planned, the rate is the run's own so far."""
    _floor: float = -math.inf
    """The latest `now` planned from: planning time never goes back (the caller's estimate of the
    earliest start may shrink), so no slot that could share a window with a new one was forgotten."""

    def take(
        self,
        now: float,
        calls_per_second: float,
        count: int,
        *,
        rate: float | None = None,
        tolerance: float = START_TOLERANCE_SECONDS,
    ) -> list[Slot]:
        """Plan up to `count` slots starting between `now` and `now + lead`, earliest first. The limit is the
        plan's (`calls_per_second`); `rate` (at most the plan) spaces them, when the dialers fall behind;
        each stays open for at least `tolerance` (DialerPace.tolerance). The limit holds for any
        tolerance: a slot's end is planned, and the dialer never starts a call after it."""
        now = self._floor = max(self._floor, now)
        span, limit = window_of(calls_per_second)
        spacing = _spacing(calls_per_second, rate, tolerance)
        self._forget(now - span - MAX_SLACK_SECONDS - CLOCK_SLACK_SECONDS)
        planned: list[Slot] = []
        while len(planned) < count:
            start = self._next(now, span, limit, spacing)
            if start > now + self.lead:
                break
            if not self._slots or start - self._slots[-1].start > span:
                self._busy_since = start
            first = bisect.bisect_right(self._slots, start - span, key=lambda s: s.start)
            recent = len(self._slots) - first + 1
            if start - self._busy_since < span:
                # Less than a span into a run of slots, the past says little: the round's own demand does (it
                # asks for the slots of a lead; a round at the plan's rate asks for more than fit).
                recent = max(recent, math.ceil(count * span / self.lead))
            slot = Slot(start, start + slack_for(recent, limit, span, tolerance))
            self._slots.append(slot)
            bisect.insort(self._ends, slot.by)
            planned.append(slot)
        return planned

    def restore(self, slots: Iterable[Slot]) -> None:
        """Plan around slots planned elsewhere (a predecessor's, read back from its leases on take-over)."""
        for slot in sorted(slots):
            if self._slots and slot.start < self._slots[-1].start:
                bisect.insort(self._slots, slot)
            else:
                self._slots.append(slot)
            bisect.insort(self._ends, slot.by)

    def recent_rate(self, calls_per_second: float) -> float | None:
        """Starts per second planned over the last span of slots (None: nothing planned yet)."""
        if not self._slots:
            return None
        span, _ = window_of(calls_per_second)
        newest = self._slots[-1].start
        first = bisect.bisect_right(self._slots, newest - span, key=lambda s: s.start)
        return (len(self._slots) - first) / span

    def give_back(self, count: int) -> None:
        """Unplan the latest `count` slots (taken, but fewer calls were requested than slots planned)."""
        for _ in range(min(count, len(self._slots))):
            self._drop(self._slots.pop())

    def wait(
        self,
        now: float,
        calls_per_second: float,
        *,
        rate: float | None = None,
        tolerance: float = START_TOLERANCE_SECONDS,
    ) -> float:
        """Seconds until one more slot may be planned (0: one fits now)."""
        now = max(self._floor, now)
        span, limit = window_of(calls_per_second)
        spacing = _spacing(calls_per_second, rate, tolerance)
        return max(0.0, self._next(now, span, limit, spacing) - self.lead - now)

    def _next(self, now: float, span: float, limit: int, spacing: float) -> float:
        """The earliest start the next slot may be planned for (`now` or later)."""
        start = now
        if self._slots:
            start = max(start, self._slots[-1].start + spacing)
        # Slots still open when the window that would end at `start` opens: if `limit` of them are, the
        # earliest-closing of the surplus has to close a span (and the clock slack) before the new start.
        opened = start - span - CLOCK_SLACK_SECONDS
        first_open = bisect.bisect_left(self._ends, opened)
        still_open = len(self._ends) - first_open
        if still_open >= limit:
            closing = self._ends[first_open + still_open - limit]
            start = max(start, math.nextafter(closing + span + CLOCK_SLACK_SECONDS, math.inf))
        return start

    def _forget(self, before: float) -> None:
        # Slots closed before `before` cannot share a window with any new one. The newest slot is always
        # kept: it sets the spacing, and for plans below 1/s (a span that grows when the plan shrinks)
        # it is the one that can still be in the window. (Slots closing late stay a little longer than
        # needed behind earlier-closing ones: memory stays bounded by the longest slack.)
        done = 0
        while done < len(self._slots) - 1 and self._slots[done].by < before:
            self._drop(self._slots[done])
            done += 1
        if done:
            del self._slots[:done]

    def _drop(self, slot: Slot) -> None:
        index = bisect.bisect_left(self._ends, slot.by)
        del self._ends[index]


def expected_lag(previous: float, measured: float) -> float:
    """The publish lag to plan with after one more measurement: a rise is followed at once, a fall slowly
    (a decaying maximum), so one quick round after a slow one does not plan slots the next slow one misses."""
    return min(MAX_PUBLISH_LAG_SECONDS, max(measured, previous * 0.9, 0.0))


IN_FLIGHT_SECONDS = 2.0
"""How many seconds of the dialers' starts may wait for their start at once (see `in_flight_limit`):
requests are published up to a second before their slots (lag, hop and lead); less than the longest slot
(MAX_SLACK_SECONDS), so a request waiting behind a full window still starts inside its slot."""

START_RATE_SECONDS = 2.0
"""Over how many seconds a workspace's start rate is measured (DialerPace.start_rate)."""

MIN_IN_FLIGHT = 20
"""The in-flight window of the slowest pace: a low plan's requests are never held back by it."""


def in_flight_limit(start_rate: float, seconds: float = IN_FLIGHT_SECONDS) -> int | None:
    """How many of a workspace's call requests may be published and not yet started (None: no limit).

    The dialers' pace is otherwise seen only through missed slots, seconds late; bounding what waits for a
    start by the rate the dialers actually start calls at (`start_rate`, DialerPace.start_rate) makes the
    dispatcher publish as fast as they start them (self-clocking, like a TCP window): a slow dialer shows
    as a full window, not as a backlog of requests missing their slots. `seconds` of starts may wait (a
    dialer that keeps up has about a second's worth: requests are published that far ahead of their slots,
    so the window leaves room to grow). `seconds` 0: no window (a benchmark that measures the dispatcher
    with no dialer running)."""
    if seconds <= 0:
        return None
    return max(MIN_IN_FLIGHT, math.ceil(max(start_rate, SLOW_START_CALLS_PER_SECOND) * seconds))


SLOW_START_CALLS_PER_SECOND = 50.0
"""The pace a workspace's slots begin at (a plan below it is not slowed at all)."""

MISSES_TO_BACK_OFF = 3
"""Missed slots within one second (of slots planned after the last back-off) before the pace halves. A
single miss is usually a dialer's timer fired late once (85-137 ms on the loaded machine); halving on it
cost 20/s plans two dips to 9-14/s for about eight seconds each in a 270 s run (mean 18.4 instead of 19).
Sustained overload misses far more than three a second, and the in-flight window bounds it first."""

IDLE_RESTART_SECONDS = 10.0
"""Slots not planned for this long: the pace learned before says little about the dialers now."""


@dataclass
class DialerPace:
    """How fast the dialers actually keep up with one workspace's slots, learned from missed slots.

    A plan may allow more starts per second than the dialers can place (a high plan, few dialers, or a
    dialer backlog after a restart). Planning at the plan's rate would then only queue requests that miss
    their slots and come back. So the rate slots are planned at backs off by half when slots are missed
    and grows back by a tenth each second without a miss, up to the plan (additive-increase/
    multiplicative-decrease, as TCP does). A miss is news about the pace only if its slot was planned
    after the last back-off (as TCP backs off once per round trip): the misses of slots planned before it
    keep arriving for seconds, and halving for each of them would take the rate far below the dialers'.
    Any miss holds back growth for a second. It only ever lowers the plan's rate, so the plan's limit holds
    whatever it learns."""

    cap: float | None = SLOW_START_CALLS_PER_SECOND
    """Calls per second to plan at; None: the plan's own rate."""
    slow_start: bool = True
    """Until the first miss (or the plan's rate), each call started adds one call a second to the cap (TCP's
    slow start: it doubles every second the dialers keep up). Misses are seen seconds after their slots
    were planned, so starting at the plan's rate on a high plan queues thousands of requests in the dialers
    before the first one is seen (a 10,000-contact run on a plan of 100,000/s missed 11,000 slots, up to
    10 s late). Starting low reaches a dialer's few hundred a second in a few seconds, and a plan's rate in
    about log2(plan / 50) seconds. Begun again after IDLE_RESTART_SECONDS without slots, as TCP does."""
    hop: float = DIALER_HOP_SECONDS
    """Seconds from a request's publication to its dialer being ready to start it: slots begin after it.
    Doubles on misses (up to MAX_DIALER_HOP_SECONDS) and decays back to the default without them."""
    _changed_at: float = float("-inf")
    _missed_at: float = float("-inf")
    misses_to_back_off: int = MISSES_TO_BACK_OFF
    _planned_at: float | None = None
    _lateness: float = START_TOLERANCE_SECONDS
    """A decaying maximum of how late after their slots' beginnings the dialers started calls."""
    _starts: deque[float] = field(default_factory=deque)
    _recent_misses: deque[float] = field(default_factory=deque)

    def rate(self, calls_per_second: float) -> float:
        return calls_per_second if self.cap is None else min(self.cap, calls_per_second)

    def tolerance(self) -> float:
        """How long a slot planned at the plan's rate stays open: half again the latest the dialers started
        calls lately, between MIN_TOLERANCE_SECONDS and START_TOLERANCE_SECONDS. Every millisecond of it
        is rate lost on a plan-bound workspace (`limit` starts per span plus tolerance), and punctual
        dialers (a 20/s plan on an idle dialer starts within a few milliseconds) do not need 45 ms. Until
        starts are seen, and after a miss, the widest."""
        return min(
            START_TOLERANCE_SECONDS, max(MIN_TOLERANCE_SECONDS, 1.5 * self._lateness + CLOCK_SLACK_SECONDS)
        )

    def start_rate(self, now: float) -> float:
        """Calls per second the dialers started for this workspace lately."""
        while self._starts and self._starts[0] < now - START_RATE_SECONDS:
            self._starts.popleft()
        return len(self._starts) / START_RATE_SECONDS

    def planned(self, now: float) -> None:
        """A round planned slots: after IDLE_RESTART_SECONDS without, the slow start begins again."""
        idle = self._planned_at is not None and now - self._planned_at > IDLE_RESTART_SECONDS
        if idle and (self.cap is None or self.cap > SLOW_START_CALLS_PER_SECOND):
            self.cap, self.slow_start = SLOW_START_CALLS_PER_SECOND, True
        if idle:
            self._lateness = START_TOLERANCE_SECONDS
        self._planned_at = now

    def started(self, now: float, calls_per_second: float, lateness: float | None = None) -> None:
        """A requested call started, `lateness` seconds after its slot began (None: not known): while
        slow-starting, the pace grows by one call a second for each (it doubles every second the dialers
        keep up with it; it stays put while they start nothing)."""
        if lateness is not None:
            self._lateness = max(lateness, self._lateness * LATENESS_DECAY, 0.0)
        self._starts.append(now)
        while self._starts and self._starts[0] < now - START_RATE_SECONDS:
            self._starts.popleft()
        if not self.slow_start or self.cap is None:
            return
        self.cap += 1.0
        if self.cap >= calls_per_second:
            self.cap, self.slow_start = None, False

    def missed(
        self,
        now: float,
        calls_per_second: float,
        planned: float | None = None,
        slot_planned_at: float | None = None,
    ) -> None:
        """A slot was missed. `planned`: the rate slots were planned at lately; the back-off starts from it
        when it is below the cap (on a plan far above what the dialers reach, halving the plan's rate
        would take many steps, each a second of missed slots, to come down to theirs). `slot_planned_at`:
        when the missed slot was planned (None: now)."""
        self._missed_at = now
        self._lateness = START_TOLERANCE_SECONDS
        self.slow_start = False
        if now - self._changed_at < 1.0:
            return
        if slot_planned_at is not None and slot_planned_at < self._changed_at:
            return  # planned at the pace before the last back-off: that back-off answered it
        self._recent_misses.append(now)
        while self._recent_misses and self._recent_misses[0] < now - 1.0:
            self._recent_misses.popleft()
        if len(self._recent_misses) < self.misses_to_back_off:
            return  # a lone late timer: the slot is planned again, the pace stays
        self._recent_misses.clear()
        base = self.rate(calls_per_second) if planned is None else min(planned, self.rate(calls_per_second))
        self.cap = max(1.0, base / 2)
        self.hop = min(MAX_DIALER_HOP_SECONDS, self.hop * 2)
        self._changed_at = now

    def kept(self, now: float, calls_per_second: float) -> None:
        if (self.cap is None and self.hop <= DIALER_HOP_SECONDS) or now - self._changed_at < 1.0:
            return
        if now - self._missed_at < 1.0:
            return  # misses still arrive: not the time to speed up
        self.hop = max(DIALER_HOP_SECONDS, self.hop * 0.9)
        if self.cap is None:
            self._changed_at = now
            return
        grown = self.cap * 1.1 + 1.0
        self.cap = None if grown >= calls_per_second else grown
        self._changed_at = now
