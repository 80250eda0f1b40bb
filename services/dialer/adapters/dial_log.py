"""An append-only record of every call a provider places: one JSON line when the dial begins, one when it
ends (`DIALER_SIM_DIAL_LOG=/path`).

It is the provider's own account of what went out on the line, kept apart from the dialer's claims and
events, so a fault-injection run (`bench/chaos.py`) can check the system's API against what was really
dialed: an attempt id dialed twice, a contact never dialed, a limit exceeded. Several dialer processes may
share one file: each line is written with a single `write` on an `O_APPEND` descriptor, so lines never
interleave. A dial whose end line is missing was cut short (the process died).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from dialer.domain.call import CallResult, OutboundCall
from dialer.ports import CallProgress, TelephonyProvider


class DialLog:
    """Wraps a provider; every `place_call` leaves a `dial` line before and an `end` line after."""

    def __init__(
        self, provider: TelephonyProvider, path: str, *, instance: str, clock: Callable[[], datetime]
    ) -> None:
        self._provider = provider
        self._path = path
        self._instance = instance
        self._clock = clock
        self._fd: int | None = None

    @property
    def name(self) -> str:
        return self._provider.name

    async def start(self) -> None:
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        await self._provider.start()

    async def stop(self) -> None:
        await self._provider.stop()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _append(self, line: dict[str, Any]) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())

    async def place_call(self, call: OutboundCall, progress: CallProgress) -> CallResult:
        self._append(
            {
                "event": "dial",
                "attempt_id": call.attempt_id,
                "to": call.to,
                "at": self._clock().isoformat(),
                "instance": self._instance,
                "pid": os.getpid(),
            }
        )
        try:
            result = await self._provider.place_call(call, progress)
        except BaseException as exc:
            # Cancelled (drain) or failed: the line went down now; the dialer reports the outcome.
            self._append(
                {
                    "event": "end",
                    "attempt_id": call.attempt_id,
                    "outcome": None,
                    "error": type(exc).__name__,
                    "at": self._clock().isoformat(),
                    "instance": self._instance,
                }
            )
            raise
        self._append(
            {
                "event": "end",
                "attempt_id": call.attempt_id,
                "outcome": result.outcome.value,
                "at": self._clock().isoformat(),
                "instance": self._instance,
            }
        )
        return result
