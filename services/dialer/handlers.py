"""The dialer's use case: claim each requested attempt, dial it once, and report how it went.

Claim before dial: the attempt id is inserted into the store first, and only the request that inserted it
is dialed, so a redelivered, duplicated or raced request is never dialed twice (DESIGN.md invariant 2).
A claim whose outcome is known re-emits the stored end event (same event id); a claim without one is left
alone (its dialer is still on the call, or died: the dispatcher's lease expiry retries it as a new attempt).
The outcome is stored on the claim before the end event is published.

Start slots (docs/adr/0024): a request with `not_before` waits in its own call task until then, and is
dialed only if it is still within its slot (until `start_by`, or `START_TOLERANCE_SECONDS` after
`not_before` when the request has no end); a request that comes too late is ended as a system error
(`slot_missed`, not billed) without dialing, and the dispatcher plans it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dialer.domain.call import AnsweredBy, CallResult, OutboundCall, aborted, slot_missed
from dialer.domain.call_events import call_answered, call_ended, call_ringing, call_started
from dialer.domain.prompt import render_prompt
from dialer.ports import AttemptStore, CallEventSink, CallMetrics, ClaimStatus, TelephonyProvider
from shared.events import START_TOLERANCE_SECONDS, CallEnded, CallRequested
from shared.telemetry import KafkaHeaders, consumer_span

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
TokenFactory = Callable[[], str]

GUARD_SECONDS = 30.0
"""Slack past ring timeout plus maximum duration before the dialer ends a call the provider did not end."""


@dataclass(frozen=True, slots=True)
class DialPolicy:
    ring_timeout_seconds: float = 30.0
    outcome_write_attempts: int = 5
    """Tries to store an outcome before giving up (the lease expiry then retries the contact)."""
    start_tolerance_seconds: float = START_TOLERANCE_SECONDS
    """How late after its slot a call may still start when the request does not say (`start_by`)."""


async def _done() -> None:
    return None


@dataclass(slots=True)
class _Progress:
    """Turns a provider's progress reports into call events, in order."""

    request: CallRequested
    events: CallEventSink
    clock: Clock

    def ringing(self) -> None:
        self.events.emit(call_ringing(self.request, self.clock()))

    def answered(self, answered_by: AnsweredBy) -> None:
        self.events.emit(call_answered(self.request, self.clock(), answered_by))


def _attributes(request: CallRequested) -> dict[str, str | int]:
    # Ids only: a span never carries the phone number or the prompt's variables.
    return {
        "batch_id": request.batch_id,
        "attempt_id": request.attempt_id,
        "attempt_number": request.attempt_number,
    }


class Dialer:
    """Handles call requests: many at once, each attempt dialed at most once."""

    def __init__(
        self,
        *,
        store: AttemptStore,
        events: CallEventSink,
        provider: TelephonyProvider,
        metrics: CallMetrics,
        clock: Clock,
        new_token: TokenFactory,
        policy: DialPolicy = DialPolicy(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._events = events
        self._provider = provider
        self._metrics = metrics
        self._clock = clock
        self._new_token = new_token
        self._policy = policy
        self._sleep = sleep
        self._calls: dict[str, asyncio.Task[None]] = {}
        self._aborting: set[str] = set()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def handle(
        self, requests: Sequence[CallRequested], headers: Sequence[KafkaHeaders] | None = None
    ) -> list[Awaitable[None]]:
        """Claim `requests` in one go; one awaitable per request, done once its handling is durable.
        `headers` (one per request, as the records carried them) continue each request's trace.

        Raises if the store cannot be reached (nothing was dialed; the caller retries the same requests).
        """
        first: dict[str, CallRequested] = {}
        carriers: dict[str, KafkaHeaders] = {}
        for index, request in enumerate(requests):
            if request.attempt_id not in first:
                first[request.attempt_id] = request
                carriers[request.attempt_id] = headers[index] if headers is not None else None
        unique = list(first.values())
        token = self._new_token()
        claims = {
            claim.attempt_id: claim
            for claim in await self._store.claim(unique, token=token, at=self._clock())
        }
        handled: dict[str, Awaitable[None]] = {}
        for request in unique:
            claim = claims[request.attempt_id]
            self._metrics.claimed(claim.status)
            carrier = carriers[request.attempt_id]
            if claim.status is ClaimStatus.CLAIMED:
                handled[request.attempt_id] = self._start(request, token, carrier)
            elif claim.status is ClaimStatus.ENDED and claim.ended is not None:
                log.info(
                    "re-emitting the stored end of a finished attempt", extra={"attempt": request.attempt_id}
                )
                with consumer_span("dialer re-emit call end", carrier, **_attributes(request)):
                    handled[request.attempt_id] = self._events.emit_confirmed(claim.ended)
            else:
                log.info(
                    "attempt already claimed and not finished: not dialing",
                    extra={"attempt": request.attempt_id},
                )
                handled[request.attempt_id] = _done()
        # A duplicate inside this batch is settled by the first copy's handling.
        results: list[Awaitable[None]] = []
        seen: set[str] = set()
        for request in requests:
            results.append(handled[request.attempt_id] if request.attempt_id not in seen else _done())
            seen.add(request.attempt_id)
        return results

    def _start(self, request: CallRequested, token: str, carrier: KafkaHeaders) -> asyncio.Task[None]:
        task = asyncio.create_task(self._dial(request, token, carrier), name=f"call {request.attempt_id}")
        self._calls[request.attempt_id] = task
        self._metrics.active(1)
        task.add_done_callback(lambda _: self._finished(request.attempt_id))
        return task

    def _finished(self, attempt_id: str) -> None:
        self._calls.pop(attempt_id, None)
        self._aborting.discard(attempt_id)
        self._metrics.active(-1)

    async def _dial(self, request: CallRequested, token: str, carrier: KafkaHeaders = None) -> None:
        # One span per call, from its claim to its acknowledged end, continuing the request's trace: the
        # call's events are emitted inside it, so status (and the dispatcher's retry) carry the trace on.
        with consumer_span("dialer place call", carrier, **_attributes(request)):
            await self._call(request, token)

    async def _call(self, request: CallRequested, token: str) -> None:
        if request.not_before is not None:
            await self._until(request.not_before)
        started_at = self._clock()
        if request.not_before is not None:
            late = (started_at - request.not_before).total_seconds()
            if late > self._slack(request):
                await self._missed(request, token, started_at, late)
                return
        progress = _Progress(request, self._events, self._clock)
        self._events.emit(call_started(request, self._provider.name, started_at))
        self._metrics.call_started(request.workspace_id)
        agent = request.agent
        call = OutboundCall(
            attempt_id=request.attempt_id,
            to=request.phone_number,
            prompt=render_prompt(
                agent.prompt_template,
                request.variables,
                defaults=agent.defaults,
                missing=agent.missing_variable,
            ),
            variables=dict(request.variables),
            agent_id=agent.agent_id,
            caller_id=agent.caller_id,
            max_call_seconds=float(agent.max_call_seconds),
            ring_timeout_seconds=self._policy.ring_timeout_seconds,
        )
        result = await self._place(call, progress)
        ended = call_ended(
            request, result, provider=self._provider.name, started_at=started_at, now=self._clock()
        )
        await self._record(ended, token)
        self._metrics.call_ended(ended.outcome, ended.duration_seconds)
        # All of a call's events share its workspace key, so this acknowledgement covers the earlier ones.
        await self._events.emit_confirmed(ended)

    def _slack(self, request: CallRequested) -> float:
        """How late after `not_before` this call may still start: the slot's own end when it has one."""
        assert request.not_before is not None
        if request.start_by is not None:
            return max(0.0, (request.start_by - request.not_before).total_seconds())
        return self._policy.start_tolerance_seconds

    async def _until(self, at: datetime) -> None:
        # A timer may fire a little early (clock resolution) or the wall clock may step: wait again.
        while (left := (at - self._clock()).total_seconds()) > 0:
            await self._sleep(left)

    async def _missed(self, request: CallRequested, token: str, now: datetime, late: float) -> None:
        """Not dialed: a start this late could put more starts in one second than the plan allows."""
        log.warning(
            "call request came too late for its start slot: not dialed",
            extra={"attempt": request.attempt_id, "late_seconds": round(late, 3)},
        )
        ended = call_ended(
            request,
            slot_missed(f"{late:.3f} s after its start slot", ended_at=now),
            provider=self._provider.name,
            started_at=now,
            now=now,
        )
        await self._record(ended, token)
        self._metrics.call_ended(ended.outcome, ended.duration_seconds)
        await self._events.emit_confirmed(ended)

    async def _place(self, call: OutboundCall, progress: _Progress) -> CallResult:
        guard = call.ring_timeout_seconds + call.max_call_seconds + GUARD_SECONDS
        try:
            async with asyncio.timeout(guard):
                return await self._provider.place_call(call, progress)
        except TimeoutError:
            log.error("provider did not end a call within its limits", extra={"attempt": call.attempt_id})
            return aborted("the provider did not end the call within its limits", ended_at=self._clock())
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if call.attempt_id not in self._aborting or task is None:
                raise
            # Our own drain cancelled the call (the provider hung up): report it and carry on.
            task.uncancel()
            return aborted("dialer shut down before the call ended", ended_at=self._clock())
        except Exception as exc:
            log.exception("provider failed", extra={"attempt": call.attempt_id})
            return aborted(f"provider error: {type(exc).__name__}: {exc}", ended_at=self._clock())

    async def _record(self, ended: CallEnded, token: str) -> None:
        for attempt in range(1, self._policy.outcome_write_attempts + 1):
            try:
                await self._store.record_outcome(ended, token=token)
                return
            except Exception:
                if attempt == self._policy.outcome_write_attempts:
                    raise
                log.warning("storing an outcome failed; retrying", extra={"attempt": ended.attempt_id})
                await asyncio.sleep(0.2 * 2**attempt)

    async def drain(self, timeout_seconds: float) -> int:
        """Let active calls finish for up to `timeout_seconds`, then end the rest as system errors.

        Returns how many calls were cut. Their outcomes are stored and published like any other.
        """
        pending = set(self._calls.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout_seconds)
        else:
            still = set()
        cut = [attempt for attempt, task in self._calls.items() if task in still]
        for attempt in cut:
            self._aborting.add(attempt)
            self._calls[attempt].cancel()
        if still:
            await asyncio.wait(still)
        return len(cut)
