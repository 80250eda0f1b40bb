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


GC_GEN0_THRESHOLD = int(os.environ.get("BC_GC_GEN0", "20000"))
"""Allocations between young collections (CPython's default is 700). Each collection that finds survivors
promotes them, and enough promotions trigger a full one, which walks every tracked object: in the status
process that is its cache of call views, and a page of a hundred calls allocates thousands of objects. Fewer
young collections mean fewer of those pauses in the middle of a request."""


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    # What exists now (modules, the app, its routes and models) lives as long as the process: frozen, the
    # collector never walks it again.
    if os.environ.get("BC_GC_FREEZE", "1") == "1":
        gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 10, 10)
    # uvicorn installs its SIGTERM handler, which runs the app's lifespan shutdown: that is where each
    # service drains (the dialer finishes active calls, the dispatcher commits its state).
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
