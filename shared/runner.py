"""Runs a service's ASGI app with uvicorn: the one way every `python -m <service>` serves HTTP."""

from __future__ import annotations

import gc
import os
import socket

import uvicorn
from fastapi import FastAPI

from shared.settings import ServiceSettings


def instance_name(service: str, settings: ServiceSettings) -> str:
    """A stable, readable client id for Kafka and MongoDB: `<service>-<host>-<pid>` unless configured."""
    return settings.instance_id or f"{service}-{socket.gethostname()}-{os.getpid()}"


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    # uvicorn installs its SIGTERM handler, which runs the app's lifespan shutdown: that is where each
    # service drains (the dialer finishes active calls, the dispatcher commits its state).
    #
    # What exists now (modules, the app, its routes and models) lives as long as the process: frozen, the
    # collector never walks it again. And young collections far apart: each one that finds survivors
    # promotes them, enough promotions trigger a full collection, which walks every tracked object (in the
    # status process its cache of call views), and a page of a hundred calls allocates thousands (ADR 0056).
    if settings.infra.gc_freeze:
        gc.freeze()
    gc.set_threshold(settings.infra.gc_gen0_threshold, 10, 10)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Named, not uvicorn's "auto": installing uvloop or httptools must not change every service at once.
        loop=settings.http_loop,
        http=settings.http_parser,
        timeout_graceful_shutdown=60,
    )
