"""Phone validation in worker processes: phonenumbers is pure Python and the slowest step of an upload,
so blocks of numbers go to a small process pool while the event loop parses and publishes."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from ingest.domain.phone import normalise_many


def _warm_up() -> None:
    # Load the metadata of the common regions once per worker, not during the first upload.
    normalise_many(["+14155550123", "+442079460958", "+33142685300", "+4930901820"], None)


class ProcessPoolValidator:
    """`NumberValidator` over `workers` processes (spawned: forking a process with threads is unsafe)."""

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up
        )

    async def normalise(self, raws: list[str], default_region: str | None) -> list[str]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, normalise_many, raws, default_region)

    def worker_pids(self) -> list[int]:
        return list(getattr(self._pool, "_processes", {}) or {})

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class InlineValidator:
    """`NumberValidator` in a thread of this process: for tests and one-core deployments."""

    async def normalise(self, raws: list[str], default_region: str | None) -> list[str]:
        return await asyncio.to_thread(normalise_many, raws, default_region)

    def close(self) -> None:
        return None
