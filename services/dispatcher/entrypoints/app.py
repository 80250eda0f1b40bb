"""The dispatcher's HTTP app: health, readiness and metrics; its lifespan runs the consumer and, on SIGTERM,
stops the loops and saves the cursors before closing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dispatcher.bootstrap import CONSUMED, SERVICE, DispatcherRuntime, build_runtime, terminate_process
from dispatcher.config import Settings
from shared.consumer_lag import ConsumerLagMonitor
from shared.http import install_common_routes
from shared.kafka import ensure_topics
from shared.mongo import ping
from shared.telemetry import configure_logging, configure_tracing
from shared.topics import Topic

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, on_fatal: Callable[[BaseException], None] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built here, on the server's event loop: the Kafka clients bind to the loop they are created on.
        runtime = build_runtime(settings, on_fatal=on_fatal) if on_fatal else build_runtime(settings)
        app.state.runtime = runtime
        await ensure_topics(settings.infra, (*CONSUMED, Topic.CALL_REQUESTS, Topic.DISPATCH_EVENTS))
        await runtime.publisher.start()
        await runtime.consumer.start()
        lag = ConsumerLagMonitor(settings.infra, settings.consumer_group, CONSUMED)
        await lag.start()
        # A consumer loop that died or stalled ends the process (as an apply failure does): a restart
        # reloads the owned state and resumes from the committed offsets.
        fatal = on_fatal or terminate_process
        guard = asyncio.create_task(runtime.consumer.heartbeat.guard(lambda p: fatal(RuntimeError(p))))
        log.info("dispatcher started", extra={"instance": runtime.name})
        try:
            yield
        finally:
            guard.cancel()
            try:
                await lag.stop()
                await runtime.consumer.stop()
            finally:
                await runtime.publisher.stop()
                await runtime.mongo.close()
            log.info("dispatcher stopped")

    app = FastAPI(title="batchcalls dispatcher", lifespan=lifespan)

    def runtime() -> DispatcherRuntime:
        running: DispatcherRuntime | None = getattr(app.state, "runtime", None)
        if running is None:
            raise RuntimeError("the dispatcher is not started")
        return running

    async def kafka() -> None:
        await runtime().kafka_consumer.topics()

    async def mongo() -> None:
        await ping(runtime().mongo)

    async def consumer() -> None:
        await runtime().consumer.heartbeat.check()

    install_common_routes(app, SERVICE, [kafka, mongo], [consumer])

    @app.get("/v1/dispatcher/ownership", include_in_schema=False)
    async def ownership() -> dict[str, object]:
        """Which partitions and workspaces this replica owns (for operators and tests)."""
        running = runtime()
        return {
            "instance": running.name,
            "partitions": sorted(running.dispatcher.partitions),
            "workspaces": running.dispatcher.workspace_ids(),
        }

    return app


def build_app(settings: Settings | None = None) -> FastAPI:
    """The app `python -m dispatcher` serves, with logging and tracing set up for this process."""
    settings = settings or Settings()
    configure_logging(SERVICE, settings.infra)
    configure_tracing(SERVICE, settings.infra)
    return create_app(settings)
