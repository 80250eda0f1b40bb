"""The `sip` provider: a SIP user agent client over UDP, built on PJSIP's pjsua2 bindings (ADR 0030).

pjsua2 is callback- and thread-based, so it lives on one dedicated thread (`mainThreadOnly`, no worker
threads): that thread creates the library, runs `libHandleEvents`, executes commands queued from asyncio
and posts every call-state change back to the event loop. Each call's logic (ring timeout, maximum
duration, outcome) is plain asyncio code over those state changes; PJSIP does the protocol: INVITE with
SDP, 100/180/183/200 handling, ACK, BYE, CANCEL, retransmissions. Outcomes follow ADR 0031.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.domain.call import CallResult, OutboundCall
from dialer.domain.sip_outcomes import outcome_for_final_response
from dialer.ports import CallProgress
from shared.outcomes import Outcome

log = logging.getLogger(__name__)

HANGUP_WAIT_SECONDS = 5.0
"""After our BYE or CANCEL, how long to wait for PJSIP to confirm the call is gone."""


@dataclass(frozen=True, slots=True)
class SipOptions:
    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    trunk_uri: str = "sip:{number}@127.0.0.1:5070"
    caller_id: str = "sip:dialer@127.0.0.1"
    max_calls: int = 32
    no_response_seconds: float = 8.0
    log_level: int = 1


@dataclass(frozen=True, slots=True)
class _State:
    """One call-state change reported by PJSIP."""

    state: str  # "calling" | "early" | "connecting" | "confirmed" | "disconnected"
    status_code: int
    reason: str


def target_uri(to: str, trunk_uri: str) -> str:
    """A `sip:` URI is used as given; a number is put into the trunk's URI template."""
    if to.startswith(("sip:", "sips:")):
        return to
    return trunk_uri.format(number=to)


class _PjThread:
    """Owns the pjsua2 library on its own thread."""

    def __init__(self, options: SipOptions) -> None:
        self._options = options
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="pjsua2", daemon=True)
        self._ready: ThreadFuture[str] = ThreadFuture()
        self._stopping = threading.Event()
        self._stopped: ThreadFuture[None] = ThreadFuture()
        self._calls: dict[int, Any] = {}
        self._account: Any = None
        self._ep: Any = None
        self._next_id = 0
        self._log_writer: Any = None

    def start(self) -> ThreadFuture[str]:
        self._thread.start()
        return self._ready

    def stop(self) -> ThreadFuture[None]:
        self._stopping.set()
        return self._stopped

    def submit(self, command: Callable[[], None]) -> None:
        self._commands.put(command)

    # --- everything below runs on the pjsua2 thread ----------------------------------------------------

    def _main(self) -> None:
        try:
            local = self._create()
        except BaseException as exc:
            self._ready.set_exception(exc)
            self._stopped.set_result(None)
            return
        self._ready.set_result(local)
        try:
            while not self._stopping.is_set():
                self._run_commands()
                self._ep.libHandleEvents(10)
            self._shutdown()
        except BaseException as exc:  # pragma: no cover - the library failing underneath us
            log.exception("pjsua2 thread failed")
            self._stopped.set_exception(exc)
            return
        self._stopped.set_result(None)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                log.exception("SIP command failed")

    def _create(self) -> str:
        import pjsua2 as pj  # imported here: the library is only needed where the sip provider runs

        opts = self._options
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = opts.max_calls
        cfg.uaConfig.userAgent = "batchcalls-dialer"
        cfg.logConfig.level = opts.log_level
        cfg.logConfig.consoleLevel = opts.log_level
        self._log_writer = _log_writer(pj)
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.decor = 0
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        transport = pj.TransportConfig()
        transport.port = opts.bind_port
        transport.boundAddress = opts.bind_host
        transport.publicAddress = opts.bind_host
        transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        ep.libStart()
        ep.audDevManager().setNullDev()
        account_cfg = pj.AccountConfig()
        account_cfg.idUri = opts.caller_id
        account_cfg.mediaConfig.transportConfig.boundAddress = opts.bind_host
        account_cfg.mediaConfig.transportConfig.publicAddress = opts.bind_host
        account_cfg.sipConfig.transportId = transport_id
        account = pj.Account()
        account.create(account_cfg)
        self._ep, self._account = ep, account
        return str(ep.transportGetInfo(transport_id).localName)

    def _shutdown(self) -> None:
        self._run_commands()
        if self._calls:
            self._ep.hangupAllCalls()
            deadline = time.monotonic() + HANGUP_WAIT_SECONDS
            while self._calls and time.monotonic() < deadline:
                self._run_commands()
                self._ep.libHandleEvents(20)
        # Call objects must be gone before libDestroy, or PJSIP asserts and aborts the process.
        self._calls.clear()
        self._account.shutdown()
        self._account = None
        self._ep.libDestroy()
        self._ep = None

    def make_call(
        self, uri: str, headers: dict[str, str], report: Callable[[_State], None]
    ) -> ThreadFuture[int]:
        """Place a call; `report` is called (on this thread) with every state change."""
        placed: ThreadFuture[int] = ThreadFuture()

        def command() -> None:
            import pjsua2 as pj

            owner = self

            class _Call(pj.Call):  # type: ignore[misc]
                def onCallState(self, prm: Any) -> None:
                    info = self.getInfo()
                    state = _STATE_NAMES.get(info.state, "other")
                    report(_State(state, int(info.lastStatusCode), str(info.lastReason)))
                    if state == "disconnected":
                        # Released on the next loop turn, not inside PJSIP's own callback.
                        owner.submit(lambda: owner._calls.pop(call_key, None))

            self._next_id += 1
            call_key = self._next_id
            call = _Call(self._account)
            param = pj.CallOpParam(True)
            param.opt.audioCount = 1
            param.opt.videoCount = 0
            for name, value in headers.items():
                header = pj.SipHeader()
                header.hName = name
                header.hValue = value
                param.txOption.headers.append(header)
            self._calls[call_key] = call
            try:
                call.makeCall(uri, param)
            except Exception as exc:
                self._calls.pop(call_key, None)
                placed.set_exception(exc)
                return
            placed.set_result(call_key)

        self.submit(command)
        return placed

    def hangup(self, call_key: int, status_code: int = 603) -> None:
        def command() -> None:
            import pjsua2 as pj

            call = self._calls.get(call_key)
            if call is None:
                return
            param = pj.CallOpParam(True)
            param.statusCode = status_code
            try:
                call.hangup(param)
            except Exception:
                log.debug("hangup on a call that is already ending", exc_info=True)

        self.submit(command)


def _log_writer(pj: Any) -> Any:
    """Routes PJSIP's own log lines into Python logging (logger `pjsua2`) instead of stdout."""
    pj_log = logging.getLogger("pjsua2")

    class _Writer(pj.LogWriter):  # type: ignore[misc]
        def write(self, entry: Any) -> None:
            pj_log.debug(str(entry.msg).rstrip())

    return _Writer()


def _state_names() -> dict[int, str]:
    try:
        import pjsua2 as pj
    except ImportError:  # pragma: no cover - only the sip provider needs the library
        return {}
    return {
        pj.PJSIP_INV_STATE_CALLING: "calling",
        pj.PJSIP_INV_STATE_INCOMING: "incoming",
        pj.PJSIP_INV_STATE_EARLY: "early",
        pj.PJSIP_INV_STATE_CONNECTING: "connecting",
        pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
        pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
    }


_STATE_NAMES: dict[int, str] = {}


class SipProvider:
    """`TelephonyProvider` placing real SIP calls from 127.0.0.1 (or the configured bind address)."""

    def __init__(self, options: SipOptions, *, clock: Callable[[], datetime]) -> None:
        self._options = options
        self._clock = clock
        self._phone: _PjThread | None = None
        self._slots = asyncio.Semaphore(options.max_calls)
        self.local_address = ""

    @property
    def name(self) -> str:
        return "sip"

    async def start(self) -> None:
        _STATE_NAMES.update(_state_names())
        self._phone = _PjThread(self._options)
        self.local_address = await asyncio.wrap_future(self._phone.start())
        log.info("SIP user agent ready", extra={"local": self.local_address})

    async def stop(self) -> None:
        if self._phone is not None:
            await asyncio.wrap_future(self._phone.stop())
            self._phone = None

    async def place_call(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        async with self._slots:
            return await self._place(call, progress)

    async def _place(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        phone = self._phone
        if phone is None:
            raise RuntimeError("the SIP provider is not started")
        loop = asyncio.get_running_loop()
        states: asyncio.Queue[_State] = asyncio.Queue()

        def report(state: _State) -> None:
            loop.call_soon_threadsafe(states.put_nowait, state)

        headers = {"X-Attempt-Id": call.attempt_id}
        if call.agent_id:
            headers["X-Agent-Id"] = call.agent_id
        if call.caller_id:
            headers["P-Asserted-Identity"] = f"<{target_uri(call.caller_id, self._options.trunk_uri)}>"
        uri = target_uri(call.to, self._options.trunk_uri)
        try:
            key = await asyncio.wrap_future(phone.make_call(uri, headers, report))
        except Exception as exc:
            return CallResult(
                Outcome.SYSTEM_ERROR, ended_at=self._clock(), provider_code="local", provider_reason=str(exc)
            )
        try:
            return await _CallSession(call, progress, states, self._options, self._clock).run(
                hangup=lambda code: phone.hangup(key, code)
            )
        except asyncio.CancelledError:
            phone.hangup(key)  # CANCEL before an answer, BYE after
            raise


class _CallSession:
    """The asyncio side of one SIP call: waits for state changes against the call's time limits."""

    def __init__(
        self,
        call: OutboundCall,
        progress: CallProgress,
        states: asyncio.Queue[_State],
        options: SipOptions,
        clock: Callable[[], datetime],
    ) -> None:
        self._call = call
        self._progress = progress
        self._states = states
        self._options = options
        self._clock = clock
        self._had_provisional = False
        self._rang = False

    async def _next(self, deadline: float) -> _State | None:
        """The next state change before `deadline` (monotonic), or None."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._states.get(), remaining)
        except TimeoutError:
            return None

    async def _until_disconnected(self, seconds: float) -> _State | None:
        deadline = time.monotonic() + seconds
        while (state := await self._next(deadline)) is not None:
            if state.state == "disconnected":
                return state
        return None

    async def run(self, hangup: Callable[[int], None]) -> CallResult:
        call = self._call
        invited = time.monotonic()
        ring_deadline = invited + call.ring_timeout_seconds
        first_deadline = invited + min(self._options.no_response_seconds, call.ring_timeout_seconds)
        while True:
            deadline = ring_deadline if self._had_provisional else first_deadline
            state = await self._next(deadline)
            if state is None:
                return await self._give_up(hangup)
            if state.status_code and 100 < state.status_code < 200 or state.state == "early":
                self._had_provisional = True
                if not self._rang and state.status_code in (180, 183):
                    self._rang = True
                    self._progress.ringing()
            if state.state == "confirmed":
                return await self._talk(hangup)
            if state.state == "disconnected":
                outcome = outcome_for_final_response(state.status_code, had_provisional=self._had_provisional)
                return CallResult(
                    outcome,
                    ended_at=self._clock(),
                    provider_code=str(state.status_code),
                    provider_reason=state.reason,
                )

    async def _give_up(self, hangup: Callable[[int], None]) -> CallResult:
        """The ring timeout (we CANCEL: no answer) or no response at all (system error)."""
        hangup(487)
        final = await self._until_disconnected(HANGUP_WAIT_SECONDS)
        if self._had_provisional:
            code = str(final.status_code) if final is not None else "487"
            return CallResult(
                outcome_for_final_response(487, had_provisional=True, cancelled_by_us=True),
                ended_at=self._clock(),
                provider_code=code,
                provider_reason=f"ring timeout after {self._call.ring_timeout_seconds:g} s; cancelled",
            )
        return CallResult(
            outcome_for_final_response(408, had_provisional=False),
            ended_at=self._clock(),
            provider_code="408",
            provider_reason=f"no response to INVITE within {self._options.no_response_seconds:g} s",
        )

    async def _talk(self, hangup: Callable[[int], None]) -> CallResult:
        answered_at = self._clock()
        answered = time.monotonic()
        self._progress.answered("unknown")
        final = await self._until_disconnected(self._call.max_call_seconds)
        if final is not None:
            reason = "far end hung up (BYE)"
        else:
            hangup(200)
            final = await self._until_disconnected(HANGUP_WAIT_SECONDS)
            reason = f"hung up at the agent's maximum call duration ({self._call.max_call_seconds:g} s)"
        return CallResult(
            Outcome.COMPLETED,
            answered_at=answered_at,
            ended_at=self._clock(),
            talk_seconds=time.monotonic() - answered,
            answered_by="unknown",
            provider_code="200",
            provider_reason=reason,
        )
