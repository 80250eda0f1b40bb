"""The dialer's HTTP app: health, readiness and metrics; its lifespan runs the consumer and drains it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dialer.bootstrap import SERVICE, DialerRuntime, build_runtime
from dialer.config import Settings
from shared.consumer_lag import ConsumerLagMonitor
from shared.http import install_common_routes
from shared.kafka import ensure_topics
from shared.mongo import ping
from shared.telemetry import configure_logging, configure_tracing
from shared.topics import Topic

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built here, on the server's event loop: the Kafka clients bind to the loop they are created on.
        runtime = build_runtime(settings)
        app.state.runtime = runtime
        await ensure_topics(settings.infra, (Topic.CALL_REQUESTS, Topic.CALL_EVENTS))
        await runtime.provider.start()
        await runtime.events.start()
        await runtime.consumer.start()
        lag = ConsumerLagMonitor(settings.infra, settings.consumer_group, (Topic.CALL_REQUESTS,))
        await lag.start()
        log.info("dialer started", extra={"provider": runtime.provider.name, "instance": runtime.name})
        try:
            yield
        finally:
            await lag.stop()
            await shutdown(runtime)

    app = FastAPI(title="batchcalls dialer", lifespan=lifespan)

    def runtime() -> DialerRuntime:
        running: DialerRuntime | None = getattr(app.state, "runtime", None)
        if running is None:
            raise RuntimeError("the dialer is not started")
        return running

    async def kafka() -> None:
        await runtime().kafka_consumer.topics()

    async def mongo() -> None:
        await ping(runtime().mongo)

    async def consumer() -> None:
        await runtime().consumer.heartbeat.check()

    install_common_routes(app, SERVICE, [kafka, mongo], [consumer])
    return app


async def shutdown(runtime: DialerRuntime) -> None:
    """SIGTERM: stop taking requests, let calls finish up to the drain timeout, cut the rest, close."""
    runtime.consumer.stop_taking()
    active = runtime.dialer.active_calls
    log.info("draining", extra={"active_calls": active, "drain_seconds": runtime.settings.drain_seconds})
    cut = await runtime.dialer.drain(runtime.settings.drain_seconds)
    if cut:
        log.warning("calls cut at the drain timeout, ended as system errors", extra={"calls": cut})
    try:
        await runtime.consumer.stop()
    finally:
        await runtime.events.stop()
        await runtime.provider.stop()
        await runtime.mongo.close()
    log.info("dialer stopped", extra={"drained": active - cut, "cut": cut})


def build_app(settings: Settings | None = None) -> FastAPI:
    """The app `python -m dialer` serves, with logging and tracing set up for this process."""
    settings = settings or Settings()
    configure_logging(SERVICE, settings.infra)
    configure_tracing(SERVICE, settings.infra)
    return create_app(settings)
