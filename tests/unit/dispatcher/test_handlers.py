"""The dispatcher's use cases over in-memory ports: ordering, limits, retries, cancel, pause, DNC, dry run,
completion, lease expiry and take-over after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.domain.batch import SEGMENT_SIZE
from dispatcher.domain.start_rate import MIN_TOLERANCE_SECONDS, handover_quiet_seconds
from dispatcher.handlers import Dispatcher
from shared.events import (
    SLOT_MISSED,
    START_TOLERANCE_SECONDS,
    AgentSnapshot,
    BatchAccepted,
    BatchCancelled,
    BatchCompleted,
    BatchIngested,
    BatchPaused,
    BatchResumed,
    BatchStarted,
    CallEnded,
    CallingWindowSpec,
    CallRequested,
    CallStarted,
    CancelBatch,
    ContactAccepted,
    ContactCancelled,
    ContactFinished,
    ContactSkipped,
    Message,
    PauseBatch,
    ResumeBatch,
    RetryPolicySpec,
    RetryScheduled,
)
from shared.outcomes import Outcome
from tests.unit.dispatcher.fakes import Clock, Dnc, MemoryStore, Plans, Sink

pytestmark = pytest.mark.unit

QUIET = handover_quiet_seconds(1.0, slots_known=True) + 0.1

WS = "ws_a"
AGENT = AgentSnapshot(
    agent_id="agent_1", name="A", prompt_template="Hi {first_name}", variables=("first_name",)
)


class World:
    def __init__(
        self,
        *,
        cps: float = 1000,
        concurrent: int = 1000,
        store: MemoryStore | None = None,
        in_flight_seconds: float = 0.0,
    ) -> None:
        # No in-flight window unless a test asks: these worlds have no dialer to report starts.
        self.in_flight_seconds = in_flight_seconds
        self.store = store or MemoryStore()
        self.sink = Sink()
        self.plans = Plans(cps, concurrent)
        self.dnc = Dnc()
        self.clock = Clock()
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.store,
            self.sink,
            self.plans,
            self.dnc,
            self.clock,
            autostart=False,
            in_flight_seconds=self.in_flight_seconds,
        )

    def envelope(self, batch_id: str) -> dict[str, object]:
        return {"occurred_at": self.clock.now(), "workspace_id": WS, "correlation_id": batch_id}

    def accepted(self, batch_id: str, total: int, **extra: object) -> BatchAccepted:
        return BatchAccepted(
            **self.envelope(batch_id),
            batch_id=batch_id,
            total_rows=total,
            agent=AGENT,
            created_at=self.clock.now(),
            **extra,  # type: ignore[arg-type]
        )

    def contacts(self, batch_id: str, rows: range, number: str = "+1212555{:04d}") -> list[Message]:
        return [
            ContactAccepted(
                **self.envelope(batch_id),
                batch_id=batch_id,
                contact_id=f"{batch_id}_r{r}",
                row_number=r,
                phone_number=number.format(r),
                variables={"first_name": f"n{r}"},  # type: ignore[arg-type]
            )
            for r in rows
        ]

    def ingested(self, batch_id: str, accepted: int, skipped: int = 0) -> BatchIngested:
        return BatchIngested(
            **self.envelope(batch_id),
            batch_id=batch_id,
            total_rows=accepted + skipped,  # type: ignore[arg-type]
            accepted=accepted,
            skipped=skipped,
        )

    def started(self, request: CallRequested) -> CallStarted:
        return CallStarted(
            **self.envelope(request.batch_id),
            batch_id=request.batch_id,
            contact_id=request.contact_id,  # type: ignore[arg-type]
            attempt_id=request.attempt_id,
            attempt_number=request.attempt_number,
            phone_number=request.phone_number,
            provider="test",
        )

    def ended(self, request: CallRequested, outcome: Outcome) -> CallEnded:
        return CallEnded(
            **self.envelope(request.batch_id),
            batch_id=request.batch_id,
            contact_id=request.contact_id,  # type: ignore[arg-type]
            attempt_id=request.attempt_id,
            attempt_number=request.attempt_number,
            outcome=outcome,
            started_at=self.clock.now(),
            duration_seconds=1.0,
            billable=outcome.billable,
            provider="test",
        )

    async def apply(self, *messages: Message) -> None:
        await self.dispatcher.apply([(0, m) for m in messages])

    async def rounds(self, n: int = 1, advance: float = 0.0) -> None:
        for _ in range(n):
            await self.dispatcher.step(WS)
            if advance:
                self.clock.advance(advance)

    def requests(self) -> list[CallRequested]:
        return [m for m in self.sink.of(CallRequested) if isinstance(m, CallRequested)]

    async def start(self) -> None:
        await self.dispatcher.take_over({0})
        await self.apply(self.accepted("batch_x", 0))  # creates the workspace
        self.clock.advance(QUIET)  # past the new owner's quiet span (one window past its predecessor's slots)


async def test_contacts_before_their_batch_wait_then_dial_in_order() -> None:
    w = World()
    await w.dispatcher.take_over({0})
    await w.apply(*w.contacts("batch_a", range(1, 4)))
    w.clock.advance(QUIET)
    await w.rounds(2)
    assert w.requests() == []
    await w.apply(w.accepted("batch_a", 3))
    await w.rounds(1)
    assert [r.contact_id for r in w.requests()] == ["batch_a_r1", "batch_a_r2", "batch_a_r3"]
    assert [r.attempt_id for r in w.requests()] == ["batch_a_r1_a1", "batch_a_r2_a1", "batch_a_r3_a1"]
    assert len(w.sink.of(BatchStarted)) == 1


async def test_concurrency_slots_and_their_release() -> None:
    w = World(cps=100, concurrent=2)
    await w.start()
    await w.apply(w.accepted("batch_a", 5), *w.contacts("batch_a", range(1, 6)))
    await w.rounds(3, advance=1)
    assert len(w.requests()) == 2
    await w.apply(w.ended(w.requests()[0], Outcome.COMPLETED))
    await w.rounds(1)
    assert len(w.requests()) == 3


async def test_calls_per_second_never_exceeded() -> None:
    w = World(cps=3, concurrent=100)
    await w.start()
    await w.apply(w.accepted("batch_a", 30), *w.contacts("batch_a", range(1, 31)))
    for _ in range(200):
        await w.rounds(1, advance=0.05)
    # The planned starts keep the plan wherever in its slot each call starts; a request is published at
    # most the lead before its start.
    slots = sorted(
        (r.not_before.timestamp(), r.start_by.timestamp())
        for r in w.requests()
        if r.not_before is not None and r.start_by is not None
    )
    assert len(slots) == len(w.requests()) >= 25
    for _, opens in slots:  # the fullest window of one second opens at the end of a slot
        assert sum(1 for start, by in slots if start <= opens + 1.0 and by >= opens) <= 3
    for r in w.requests():
        assert r.not_before is not None and r.start_by is not None
        assert r.occurred_at <= r.not_before <= r.occurred_at + timedelta(seconds=1)
        assert r.start_by >= r.not_before + timedelta(seconds=START_TOLERANCE_SECONDS - 1e-6)
        # The lease runs from the slot's end, so the wait in the dialer does not shorten the call.
        assert r.lease_expires_at == r.start_by + timedelta(seconds=AGENT.max_call_seconds + 60)


async def test_a_request_that_missed_its_slot_is_planned_again_at_once() -> None:
    w = World(cps=10)
    await w.start()
    policy = RetryPolicySpec(max_attempts=1)
    await w.apply(w.accepted("batch_a", 1, retry_policy=policy), *w.contacts("batch_a", range(1, 2)))
    await w.rounds(1)
    (first,) = w.requests()
    missed = w.ended(first, Outcome.SYSTEM_ERROR).model_copy(
        update={"provider_code": SLOT_MISSED, "duration_seconds": 0.0}
    )
    await w.apply(missed)
    w.clock.advance(1.1)  # the pace backed off to the rate planned lately (1/s): the next slot is a second on
    await w.rounds(1)
    assert [r.attempt_id for r in w.requests()] == ["batch_a_r1_a1", "batch_a_r1_a2"]
    # It was never dialed: the contact's one attempt is still there to use.
    await w.apply(w.ended(w.requests()[1], Outcome.BUSY))
    assert [m.outcome for m in w.sink.of(ContactFinished)] == [Outcome.BUSY]  # type: ignore[attr-defined]


async def test_missed_slots_never_end_a_contact_however_many() -> None:
    # More misses than the system-error retries a contact gets: a dialer backlog must never fail anyone.
    w = World(cps=10)
    await w.start()
    await w.apply(
        w.accepted("batch_a", 1, retry_policy=RetryPolicySpec(max_attempts=1)),
        *w.contacts("batch_a", range(1, 2)),
    )
    await w.rounds(1)
    for missed in range(1, 7):
        await w.apply(
            w.ended(w.requests()[-1], Outcome.SYSTEM_ERROR).model_copy(
                update={"provider_code": SLOT_MISSED, "duration_seconds": 0.0}
            )
        )
        for _ in range(20):  # the pace backs off after misses: the next slot may be some rounds away
            if len(w.requests()) > missed:
                break
            await w.rounds(1, advance=0.5)
    assert len(w.requests()) == 7
    assert w.sink.of(ContactFinished) == []
    await w.apply(w.ended(w.requests()[-1], Outcome.COMPLETED))
    assert [m.outcome for m in w.sink.of(ContactFinished)] == [Outcome.COMPLETED]  # type: ignore[attr-defined]


async def test_retry_ladder_then_finish_with_new_attempt_ids() -> None:
    w = World()
    await w.start()
    await w.apply(
        w.accepted("batch_a", 1, retry_policy=RetryPolicySpec(max_attempts=2, gaps_seconds=(60,))),
        *w.contacts("batch_a", range(1, 2)),
        w.ingested("batch_a", 1),
    )
    await w.rounds(1)
    await w.apply(w.ended(w.requests()[0], Outcome.BUSY))
    retry = w.sink.of(RetryScheduled)
    assert len(retry) == 1
    await w.rounds(1)
    assert len(w.requests()) == 1  # not due yet
    w.clock.advance(61)
    await w.rounds(1)
    assert [r.attempt_id for r in w.requests()] == ["batch_a_r1_a1", "batch_a_r1_a2"]
    await w.apply(w.ended(w.requests()[1], Outcome.NO_ANSWER))
    finished = w.sink.of(ContactFinished)
    assert len(finished) == 1 and finished[0].attempts == 2  # type: ignore[attr-defined]
    w.clock.advance(2)
    await w.rounds(1)
    completed = w.sink.of(BatchCompleted)
    assert len(completed) == 1
    assert completed[0].counts.failed == 1  # type: ignore[attr-defined]


async def test_do_not_call_is_checked_at_dial_time() -> None:
    w = World()
    await w.start()
    await w.apply(w.accepted("batch_a", 2), *w.contacts("batch_a", range(1, 3)), w.ingested("batch_a", 2))
    w.dnc.numbers.add((WS, "+12125550002"))
    await w.rounds(1)
    assert [r.contact_id for r in w.requests()] == ["batch_a_r1"]
    skipped = [m for m, topic in w.sink.messages if isinstance(m, ContactSkipped)]
    assert [s.contact_id for s in skipped] == ["batch_a_r2"]  # type: ignore[attr-defined]


async def test_opted_out_adds_the_number_to_the_list() -> None:
    w = World()
    await w.start()
    await w.apply(w.accepted("batch_a", 1), *w.contacts("batch_a", range(1, 2)))
    await w.rounds(1)
    await w.apply(w.ended(w.requests()[0], Outcome.OPTED_OUT))
    assert (WS, "+12125550001") in w.dnc.numbers


async def test_cancel_drops_waiting_contacts_and_lets_active_calls_finish() -> None:
    w = World(cps=100, concurrent=2)
    await w.start()
    await w.apply(w.accepted("batch_a", 10), *w.contacts("batch_a", range(1, 11)), w.ingested("batch_a", 10))
    await w.rounds(1)
    assert len(w.requests()) == 2
    await w.apply(CancelBatch(**w.envelope("batch_a"), batch_id="batch_a", requested_at=w.clock.now()))  # type: ignore[arg-type]
    await w.rounds(3, advance=1)
    assert len(w.requests()) == 2
    assert len(w.sink.of(ContactCancelled)) == 8
    cancelled = w.sink.of(BatchCancelled)
    assert len(cancelled) == 1
    await w.apply(w.ended(w.requests()[0], Outcome.COMPLETED), w.ended(w.requests()[1], Outcome.BUSY))
    # A retryable end of a cancelled batch is cancelled, not retried.
    assert len(w.sink.of(ContactCancelled)) == 9 and not w.sink.of(RetryScheduled)
    await w.apply(*w.contacts("batch_a", range(11, 12)))  # late arrival
    assert len(w.sink.of(ContactCancelled)) == 10
    await w.rounds(2, advance=1)
    assert len(w.requests()) == 2
    assert not w.sink.of(BatchCompleted)


async def test_pause_holds_and_resume_releases() -> None:
    w = World(cps=100)
    await w.start()
    await w.apply(w.accepted("batch_a", 3), PauseBatch(**w.envelope("batch_a"), batch_id="batch_a"))  # type: ignore[arg-type]
    await w.apply(*w.contacts("batch_a", range(1, 4)))
    await w.rounds(2, advance=1)
    assert w.requests() == [] and len(w.sink.of(BatchPaused)) == 1
    await w.apply(ResumeBatch(**w.envelope("batch_a"), batch_id="batch_a"))  # type: ignore[arg-type]
    await w.rounds(1)
    assert len(w.requests()) == 3 and len(w.sink.of(BatchResumed)) == 1


async def test_scheduled_batches_wait_for_their_time() -> None:
    w = World()
    await w.start()
    at = w.clock.now() + timedelta(minutes=5)
    await w.apply(w.accepted("batch_a", 1, scheduled_at=at), *w.contacts("batch_a", range(1, 2)))
    await w.rounds(1, advance=200)
    assert w.requests() == []
    w.clock.advance(101)
    await w.rounds(1)
    assert len(w.requests()) == 1


async def test_outside_the_window_contacts_wait_and_other_lanes_dial() -> None:
    w = World()
    w.clock.at = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # 07:30 New York, 13:30 Paris
    await w.start()
    await w.apply(
        w.accepted("batch_a", 2),
        *w.contacts("batch_a", range(1, 2)),  # New York
        *w.contacts("batch_a", range(2, 3), number="+3361234{:04d}"),  # Paris
    )
    await w.rounds(1)
    assert [r.contact_id for r in w.requests()] == ["batch_a_r2"]
    w.clock.at = datetime(2026, 3, 2, 13, 0, 1, tzinfo=UTC)  # 08:00 New York
    await w.rounds(1)
    assert [r.contact_id for r in w.requests()] == ["batch_a_r2", "batch_a_r1"]


async def test_custom_window_with_fallback_zone() -> None:
    w = World()
    await w.start()
    spec = CallingWindowSpec(days=(0,), fallback_timezone="Europe/London")
    await w.apply(
        w.accepted("batch_a", 1, calling_window=spec),
        *w.contacts("batch_a", range(1, 2), number="+4477009{:05d}"),
    )
    await w.rounds(1)
    assert len(w.requests()) == 1  # Monday 15:00 London
    w.clock.advance(86400)
    await w.apply(
        w.accepted("batch_b", 1, calling_window=spec),
        *w.contacts("batch_b", range(1, 2), number="+4477009{:05d}"),
    )
    await w.rounds(1)
    assert len(w.requests()) == 1  # Tuesday: not an allowed day


async def test_dry_run_dials_only_the_first_contact() -> None:
    w = World()
    await w.start()
    await w.apply(
        w.accepted("batch_a", 5, dry_run=True), *w.contacts("batch_a", range(1, 6)), w.ingested("batch_a", 5)
    )
    await w.rounds(3, advance=1)
    assert [r.contact_id for r in w.requests()] == ["batch_a_r1"]
    assert len(w.sink.of(ContactCancelled)) == 4
    await w.apply(w.ended(w.requests()[0], Outcome.BUSY))
    w.clock.advance(2)
    await w.rounds(1)
    assert len(w.sink.of(BatchCompleted)) == 1


async def test_a_lease_without_an_end_event_expires_and_retries_as_a_new_attempt() -> None:
    w = World()
    await w.start()
    await w.apply(w.accepted("batch_a", 1), *w.contacts("batch_a", range(1, 2)))
    await w.rounds(1)
    w.clock.advance(AGENT.max_call_seconds + 61)
    await w.rounds(1)
    retry = w.sink.of(RetryScheduled)
    assert len(retry) == 1 and retry[0].after_outcome is Outcome.SYSTEM_ERROR  # type: ignore[attr-defined]
    w.clock.advance(31)
    await w.rounds(1)
    assert [r.attempt_id for r in w.requests()] == ["batch_a_r1_a1", "batch_a_r1_a2"]
    # The late end of the first attempt changes nothing.
    await w.apply(w.ended(w.requests()[0], Outcome.COMPLETED))
    assert not w.sink.of(ContactFinished)


async def test_round_robin_across_batches_of_a_workspace() -> None:
    w = World(cps=4)
    await w.start()
    await w.apply(w.accepted("batch_a", 100), *w.contacts("batch_a", range(1, 101)))
    await w.apply(w.accepted("batch_b", 2), *w.contacts("batch_b", range(1, 3)))
    await w.rounds(8, advance=0.26)
    batches = [r.batch_id for r in w.requests()]
    assert batches[:4].count("batch_b") == 2  # the small batch is not stuck behind the big one


async def test_take_over_after_a_crash_resumes_without_loss_or_redial() -> None:
    w = World(cps=1000, concurrent=7)
    await w.start()
    n = SEGMENT_SIZE + 40
    await w.apply(w.accepted("batch_a", n), *w.contacts("batch_a", range(1, n + 1)), w.ingested("batch_a", n))
    await w.rounds(1)
    first = w.requests()
    assert len(first) == 7
    # Crash: a new instance on the same store; the old one's memory is gone (cursors may be unsaved).
    w.dispatcher = w.new_dispatcher()
    await w.dispatcher.take_over({0})
    await w.apply(*[w.ended(r, Outcome.COMPLETED) for r in first])
    for _ in range(400):
        w.clock.advance(2)
        await w.rounds(1)
        pending = [r for r in w.requests() if r.attempt_id in w.store.open_leases()]
        await w.apply(*[w.ended(r, Outcome.COMPLETED) for r in pending])
        if w.sink.of(BatchCompleted):
            break
    attempts = [r.attempt_id for r in w.requests()]
    assert len(set(attempts)) == n  # every contact dialed exactly once (republish of an open lease aside)
    assert len(w.sink.of(BatchCompleted)) == 1
    assert w.sink.of(BatchCompleted)[0].counts.completed == n  # type: ignore[attr-defined]


async def test_a_retry_added_to_a_minute_already_read_is_not_lost() -> None:
    w = World()
    await w.start()
    retry = RetryPolicySpec(max_attempts=2, gaps_seconds=(1,))
    await w.apply(w.accepted("batch_a", 2, retry_policy=retry), *w.contacts("batch_a", range(1, 3)))
    await w.rounds(1)
    first, second = w.requests()
    await w.apply(w.ended(first, Outcome.BUSY))
    w.clock.advance(1.5)
    await w.rounds(1)  # reads the minute bucket and dials the first retry
    await w.apply(w.ended(second, Outcome.BUSY))  # lands in the same minute bucket, now in memory
    w.clock.advance(1.5)
    await w.rounds(1)
    assert sorted(r.attempt_id for r in w.requests()) == sorted(
        ["batch_a_r1_a1", "batch_a_r2_a1", "batch_a_r1_a2", "batch_a_r2_a2"]
    )


async def test_replayed_contacts_never_get_a_second_different_terminal_state() -> None:
    w = World(cps=100, concurrent=1)
    await w.start()
    await w.apply(w.accepted("batch_a", 3), *w.contacts("batch_a", range(1, 4)), w.ingested("batch_a", 3))
    await w.rounds(1)
    (first,) = w.requests()
    await w.apply(w.ended(first, Outcome.COMPLETED))
    await w.rounds(1)
    second = w.requests()[1]
    env = w.envelope("batch_a")
    cancel = CancelBatch(**env, batch_id="batch_a", requested_at=w.clock.now())  # type: ignore[arg-type]
    await w.apply(cancel)
    await w.rounds(2, advance=1)
    # A crash replays the contacts: the finished one keeps ContactFinished, the one in a call is left alone.
    await w.apply(*w.contacts("batch_a", range(1, 4)))
    terminal: dict[str, set[str]] = {}
    for m, _ in w.sink.messages:
        if isinstance(m, ContactFinished | ContactCancelled):
            terminal.setdefault(m.contact_id, set()).add(type(m).__name__)
    assert terminal["batch_a_r1"] == {"ContactFinished"}
    assert terminal["batch_a_r3"] == {"ContactCancelled"}
    assert "batch_a_r2" not in terminal
    await w.apply(w.ended(second, Outcome.COMPLETED))
    w.clock.advance(2)
    await w.rounds(1)
    assert "batch_a" in w.store.finished  # retired once every accepted contact ended
    before = len(w.sink.messages)
    await w.apply(*w.contacts("batch_a", range(1, 4)))  # replay after retirement: ignored
    assert len(w.sink.messages) == before


def _fullest_window(requests: list[CallRequested], span: float = 1.0) -> int:
    """The most calls one closed window of `span` can hold, each starting anywhere inside its slot."""
    slots = [
        (r.not_before.timestamp(), r.start_by.timestamp())
        for r in requests
        if r.not_before is not None and r.start_by is not None
    ]
    return max(sum(1 for s, b in slots if s <= opens + span and b >= opens) for _, opens in slots)


async def test_a_new_owner_plans_around_the_open_slots_of_its_predecessors_leases() -> None:
    w = World(cps=3, concurrent=100)
    await w.start()
    await w.apply(w.accepted("batch_a", 20), *w.contacts("batch_a", range(1, 21)))
    await w.rounds(3, advance=0.1)
    before = len(w.requests())
    assert before >= 2
    # Crash: the new owner knows the open slots only from the leases, and plans after one quiet span.
    w.dispatcher = w.new_dispatcher()
    await w.dispatcher.take_over({0})
    for _ in range(30):
        await w.rounds(1, advance=0.1)
    assert len(w.requests()) > before
    assert _fullest_window(w.requests()) <= 3


async def test_a_lease_without_its_slot_makes_the_new_owner_wait_for_the_furthest_slot() -> None:
    w = World(cps=3, concurrent=100)
    await w.start()
    await w.apply(w.accepted("batch_a", 20), *w.contacts("batch_a", range(1, 21)))
    await w.rounds(1)
    for book in w.store.books.values():  # written before leases kept their slots
        for doc in book["leases"]:
            del doc["slot_start"], doc["slot_by"]
    before = len(w.requests())
    w.dispatcher = w.new_dispatcher()
    await w.dispatcher.take_over({0})
    quiet = handover_quiet_seconds(1.0, slots_known=False)
    for _ in range(int(quiet * 10) - 2):
        await w.rounds(1, advance=0.1)
    assert len(w.requests()) == before
    for _ in range(10):
        await w.rounds(1, advance=0.1)
    assert len(w.requests()) > before


async def test_requests_waiting_for_their_start_are_bounded_and_each_start_opens_a_place() -> None:
    # Slow dialers: what waits for a start is bounded by the rate they start calls at (self-clocking), so
    # they never get a backlog of requests that miss their slots.
    w = World(cps=100_000, concurrent=100_000, in_flight_seconds=2.0)
    await w.start()
    await w.apply(w.accepted("batch_a", 2000), *w.contacts("batch_a", range(1, 2001)))
    await w.rounds(60, advance=0.1)
    first = w.requests()
    assert len(first) == 100  # two seconds at the slow start's 50/s, then the window is full
    await w.rounds(20, advance=0.1)
    assert len(w.requests()) == 100  # nothing started: nothing more
    await w.apply(*[w.started(r) for r in first[:30]], *[w.ended(r, Outcome.COMPLETED) for r in first[30:40]])
    await w.rounds(10, advance=0.1)
    # 30 started and 10 ended (never started: missed) opened 40 places; 15 starts a second over the last
    # two seconds is below the slow start's 50/s, so the window stays at 100.
    assert len(w.requests()) == 140


async def test_while_the_dialers_keep_up_the_slow_start_speeds_up() -> None:
    w = World(cps=100_000, concurrent=100_000, in_flight_seconds=2.0)
    await w.start()
    await w.apply(w.accepted("batch_a", 5000), *w.contacts("batch_a", range(1, 5001)))
    for _ in range(60):  # every request starts a tenth of a second after it is published
        before = len(w.requests())
        await w.rounds(1, advance=0.1)
        await w.apply(*[w.started(r) for r in w.requests()[before:]])
    assert len(w.requests()) > 1000  # 50/s doubling each second: far more than 6 s at 50/s


async def test_punctual_starts_narrow_the_slots_and_a_miss_widens_them_again() -> None:
    w = World(cps=20, concurrent=1000)
    await w.start()
    await w.apply(w.accepted("batch_a", 2000), *w.contacts("batch_a", range(1, 2001)))
    seen = 0
    for _ in range(400):  # every call starts 2 ms into its slot, as its request's own time says
        await w.rounds(1, advance=0.05)
        fresh = w.requests()[seen:]
        seen += len(fresh)
        await w.apply(
            *[
                w.started(r).model_copy(update={"occurred_at": r.not_before + timedelta(milliseconds=2)})
                for r in fresh
                if r.not_before is not None
            ]
        )

    def open_for(request: CallRequested) -> float:
        assert request.not_before is not None and request.start_by is not None
        return (request.start_by - request.not_before).total_seconds()

    assert open_for(w.requests()[0]) == pytest.approx(START_TOLERANCE_SECONDS)
    assert open_for(w.requests()[-1]) == pytest.approx(MIN_TOLERANCE_SECONDS)
    assert _fullest_window(w.requests()) <= 20
    missed = w.ended(w.requests()[-1], Outcome.SYSTEM_ERROR).model_copy(
        update={"provider_code": SLOT_MISSED, "duration_seconds": 0.0}
    )
    await w.apply(missed)
    await w.rounds(3, advance=0.05)
    assert open_for(w.requests()[-1]) == pytest.approx(START_TOLERANCE_SECONDS)


async def test_a_new_owner_finds_exactly_the_open_leases_in_their_books() -> None:
    w = World(cps=100, concurrent=10)
    await w.start()
    await w.apply(w.accepted("batch_a", 6), *w.contacts("batch_a", range(1, 7)))
    await w.rounds(1)
    first = w.requests()
    assert len(first) == 6 and len(w.store.books) == 1  # one round, one book
    await w.apply(*[w.ended(r, Outcome.COMPLETED) for r in first[:2]])
    assert len(w.store.ends) == 1  # the book keeps four open leases
    w.dispatcher = w.new_dispatcher()
    await w.dispatcher.take_over({0})
    assert set(w.store.open_leases()) == {r.attempt_id for r in first[2:]}
    await w.rounds(1)
    assert len(w.requests()) == 6  # the four open calls hold their slots; nothing is dialed again
    await w.apply(*[w.ended(r, Outcome.COMPLETED) for r in first[2:]])
    assert w.store.books == {} and w.store.ends == {}  # nothing left once every lease ended


async def test_leases_stored_one_document_each_are_moved_into_a_book() -> None:
    w = World(cps=100, concurrent=10)
    await w.start()
    await w.apply(w.accepted("batch_a", 2), *w.contacts("batch_a", range(1, 3)))
    await w.rounds(1)
    # As an earlier version stored them: one document per lease, the contact's fields next to the lease's,
    # times as datetimes.
    for book in w.store.books.values():
        for doc in book["leases"]:
            lease = {k: v for k, v in doc.items() if k != "contact"}
            now = w.clock.now()
            w.store.leases_[doc["_id"]] = {**lease, **doc["contact"], "requested_at": now, "expires_at": now}
    w.store.books.clear()
    w.dispatcher = w.new_dispatcher()
    await w.dispatcher.take_over({0})
    assert w.store.leases_ == {} and len(w.store.books) == 1
    w.clock.advance(1)
    await w.rounds(1)  # expired at once (as stored): each becomes a retry, not a lost contact
    assert len(w.sink.of(RetryScheduled)) == 2


async def test_a_batch_counts_its_terminal_states_from_the_store_once_per_owner() -> None:
    # Counting in the store scans the batch's outcomes; a cancelled batch whose contacts keep arriving is
    # checked every second, so the counts are kept as outcomes are written.
    w = World(cps=100, concurrent=2)
    await w.start()
    reads = 0
    count_in_store = w.store.outcome_counts

    async def counted(batch_id: str) -> dict[str, int]:
        nonlocal reads
        reads += 1
        return await count_in_store(batch_id)

    w.store.outcome_counts = counted  # type: ignore[method-assign]
    await w.apply(w.accepted("batch_a", 10), *w.contacts("batch_a", range(1, 6)), w.ingested("batch_a", 10))
    await w.apply(CancelBatch(**w.envelope("batch_a"), batch_id="batch_a", requested_at=w.clock.now()))  # type: ignore[arg-type]
    for n in range(6, 11):  # late arrivals, a second apart
        await w.rounds(2, advance=1)
        await w.apply(*w.contacts("batch_a", range(n, n + 1)))
    await w.rounds(3, advance=1)
    assert len(w.sink.of(ContactCancelled)) == 10
    assert len(w.sink.of(BatchCancelled)) == 1 and reads == 1
    w.dispatcher = w.new_dispatcher()  # a new owner reads them once more, then counts
    await w.dispatcher.take_over({0})
    await w.rounds(3, advance=1)
    assert reads <= 2


async def test_a_new_batch_is_counted_when_it_arrives_not_at_its_end() -> None:
    # At its end the count would be a scan of every outcome of the batch, on the way to its completion;
    # when it arrives there are none (or the few a crashed owner stored before saving the batch).
    w = World(cps=100, concurrent=5)
    await w.start()
    reads: list[str] = []
    count_in_store = w.store.outcome_counts

    async def counted(batch_id: str) -> dict[str, int]:
        reads.append(batch_id)
        return await count_in_store(batch_id)

    w.store.outcome_counts = counted  # type: ignore[method-assign]
    await w.apply(w.accepted("batch_a", 3))
    assert reads == ["batch_a"]
    await w.apply(*w.contacts("batch_a", range(1, 4)), w.ingested("batch_a", 3))
    await w.rounds(3, advance=1)
    for request in w.sink.of(CallRequested):
        await w.apply(w.ended(request, Outcome.COMPLETED))
    await w.rounds(2, advance=1)
    (completed,) = w.sink.of(BatchCompleted)
    assert completed.counts.completed == 3 and reads == ["batch_a"]
