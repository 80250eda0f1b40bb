"""The status service's FastAPI app: the query API plus the projector and webhook delivery as lifespan
tasks (Kafka and MongoDB clients live and die with the app)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from shared.http import install_common_routes
from shared.liveness import Heartbeat
from shared.mongo import ping
from shared.telemetry import configure_logging, configure_tracing
from status.adapters.documents import LAYOUT
from status.adapters.kafka_source import run_projection
from status.adapters.webhook_sender import HttpxSender
from status.bootstrap import Container, build, now_ms
from status.config import Settings
from status.entrypoints.api import PREFIXES, BatchCache, batch_router, usage_router
from status.entrypoints.status_bodies import StatusBodies
from status.entrypoints.webhooks_api import webhooks_router
from status.handlers import WebhookDeliverer

log = logging.getLogger(__name__)


def _terminate(problem: str) -> None:
    # SIGTERM runs the lifespan's shutdown; the supervisor (or Kubernetes) starts a fresh process.
    os.kill(os.getpid(), signal.SIGTERM)


def create_app(container: Container, *, on_dead_projector: Callable[[str], None] | None = None) -> FastAPI:
    """The app over an already built container (tests build their own). With `on_dead_projector`, a
    projector that died or stalled is also acted on (the process ends it), not only reported by /healthz."""
    settings = container.settings
    stopping = asyncio.Event()
    heartbeat = Heartbeat("status projector", stall_seconds=settings.projector_stall_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container.source is not None:
            # Only the projector: a replica that only answers queries never drops what it reads.
            replay, notices_from = await container.read_models.prepare_layout(now_ms())
            container.projector.send_notices_from(notices_from)
            if replay:
                log.warning(
                    "status read models were of another layout (or an interrupted replay): dropped; "
                    "replaying every topic from its beginning",
                    extra={"layout": LAYOUT},
                )
                container.source.replay_from_start(container.read_models.layout_replayed)
        await container.read_models.ensure_indexes()
        await container.webhooks.ensure_indexes()
        tasks: list[asyncio.Task[None]] = []
        sender: HttpxSender | None = None
        guard: asyncio.Task[None] | None = None
        if container.source is not None:
            await container.source.start()
            projector = asyncio.create_task(
                run_projection(
                    container.source,
                    container.projector.project,
                    container.projector.forget,
                    stopping,
                    catchup_records=settings.catchup_max_records,
                    catchup_ms=settings.catchup_max_ms,
                    heartbeat=heartbeat,
                    horizon=container.read_models.ledger_horizon,
                ),
                name="status-projector",
            )
            heartbeat.watch(projector)
            tasks.append(projector)
            if on_dead_projector is not None:
                guard = asyncio.create_task(heartbeat.guard(on_dead_projector), name="status-projector-guard")
        if settings.deliver_webhooks:
            sender = HttpxSender(settings.webhook_timeout_seconds)
            deliverer = WebhookDeliverer(
                container.read_models,
                container.webhooks,
                sender,
                now_ms=now_ms,
                max_attempts=settings.webhook_max_attempts,
                backoff_ms=int(settings.webhook_backoff_seconds * 1000),
                backoff_max_ms=int(settings.webhook_backoff_max_seconds * 1000),
            )
            tasks.append(
                asyncio.create_task(
                    deliverer.run(stopping, settings.webhook_poll_seconds), name="status-webhooks"
                )
            )
        try:
            yield
        finally:
            stopping.set()
            heartbeat.stop()
            if guard is not None:
                guard.cancel()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=10)
                except (TimeoutError, asyncio.CancelledError):
                    task.cancel()
                except Exception:
                    log.exception("background task failed at shutdown")
            if container.source is not None:
                await container.source.stop()
            if sender is not None:
                await sender.aclose()
            await container.client.close()

    app = FastAPI(
        title="Batch Calls — status",
        version="1.0.0",
        description="Batch and call status, call lists, results export, live events, usage and webhooks. "
        "Every request carries `x-api-key` and `x-workspace-id`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.read_models = container.read_models
    app.state.webhooks = container.webhooks
    app.state.workspaces = container.workspaces
    app.state.request_limiter = container.request_limiter
    app.state.batch_cache = batch_cache = BatchCache(container.read_models, settings.status_cache_ms)
    app.state.status_bodies = StatusBodies()
    if container.source is not None:
        # This process projects: the API sees each batch document as soon as it is written.
        container.read_models.on_shown(batch_cache.put)

    async def mongo() -> None:
        await ping(container.client)

    checks = [mongo]
    liveness = []
    if container.source is not None:
        source = container.source

        async def kafka() -> None:
            await source.ready()

        async def projector() -> None:
            await heartbeat.check()

        checks.append(kafka)
        liveness.append(projector)
    install_common_routes(app, "status", checks, liveness)
    for prefix in PREFIXES:
        app.include_router(batch_router(), prefix=prefix)
    app.include_router(usage_router())
    app.include_router(webhooks_router())
    # Room for the web dashboard: it will be mounted at /app (StaticFiles) by the dashboard's issue.
    return app


def build_app(settings: Settings) -> FastAPI:
    configure_logging("status", settings.infra)
    configure_tracing("status", settings.infra)
    return create_app(build(settings), on_dead_projector=_terminate)
