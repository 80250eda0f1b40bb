"""Liveness of a service's consumer loop.

An HTTP server that still answers says nothing about the Kafka consumer task beside it: a loop that died on
an exception, or that awaits a database reply that never comes, leaves `/healthz` green while its lag grows.
So each consumer loop beats once per round; `Heartbeat.check` fails once the loop's task has ended
unexpectedly or has not beaten for `stall_seconds`, and `/healthz` (the Kubernetes liveness probe) and
`/readyz` report it. `guard` turns the same signal into a restart where no prober watches: it calls
`on_failure` (the services terminate themselves), and the stack's supervisor or Kubernetes starts a new
process, which resumes from the last committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Heartbeat:
    """The pulse of one background loop."""

    def __init__(
        self, name: str, *, stall_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._last = clock()
        self._task: asyncio.Task[Any] | None = None
        self._stopping = False

    def beat(self) -> None:
        """The loop went round once (polled, or finished a unit of work)."""
        self._last = self._clock()

    def watch(self, task: asyncio.Task[Any]) -> None:
        """The task that runs the loop: its end, unless `stop` came first, is a death."""
        self._task = task
        self._last = self._clock()
        task.add_done_callback(self._ended)

    def stop(self) -> None:
        """The loop is being stopped on purpose (shutdown): its end is not a failure."""
        self._stopping = True

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        log.critical("%s ended unexpectedly", self.name, exc_info=error)

    def problem(self) -> str | None:
        """Why the loop is not alive, or None."""
        if self._stopping:
            return None
        task = self._task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            return f"{self.name} ended: {error!r}" if error else f"{self.name} ended"
        quiet = self._clock() - self._last
        if quiet > self._stall_seconds:
            return f"{self.name} has made no progress for {quiet:.0f}s"
        return None

    async def check(self) -> None:
        """A liveness check for `/healthz` and `/readyz`: raises while the loop is dead or stalled."""
        problem = self.problem()
        if problem is not None:
            raise RuntimeError(problem)

    async def guard(self, on_failure: Callable[[str], None], *, every_seconds: float = 5.0) -> None:
        """Calls `on_failure` once when the loop dies or stalls (runs until cancelled)."""
        while True:
            problem = self.problem()
            if problem is not None:
                log.critical("restarting: %s", problem)
                with contextlib.suppress(Exception):
                    on_failure(problem)
                return
            await asyncio.sleep(every_seconds)
