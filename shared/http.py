"""What every service's HTTP app shares: health, readiness, Prometheus metrics, request metrics and the
`{"error": ..., "message": ...}` error body the reference API uses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when a dependency (Kafka, MongoDB) is not usable."""

HTTP_LATENCY = Histogram(
    "batchcalls_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the client caused or can act on; rendered as `{"error", "message"}` with its status."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class RequestMetrics:
    """Observes `HTTP_LATENCY` per request, from its arrival until its response starts (a stream's headers,
    not its end). Plain ASGI rather than `@app.middleware("http")`: that one runs every request through an
    extra task and memory streams, which cost more than a cached status GET itself."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self._app = app
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            # The router records the matched route in this same scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(self._service, scope["method"], template, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )

        async def measured_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(int(message["status"]))
            await send(message)

        try:
            await self._app(scope, receive, measured_send)
        except Exception:
            if not observed:
                observe(500)
            raise


def error_body(error: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": error, "message": message, **extra}


async def _failures(checks: Sequence[ReadinessCheck]) -> list[str]:
    failures: list[str] = []
    for check in checks:
        try:
            await check()
        except Exception as exc:  # a probe reports, it never raises
            failures.append(f"{getattr(check, '__name__', 'check')}: {exc}")
    return failures


def install_common_routes(
    app: FastAPI,
    service: str,
    checks: Sequence[ReadinessCheck],
    liveness: Sequence[ReadinessCheck] = (),
) -> None:
    """Adds /healthz, /readyz, /metrics, request metrics and uniform error bodies to `app`. `liveness` checks
    (a consumer loop that died or stalled, see `shared.liveness`) fail /healthz as well as /readyz: only a
    restart helps then, while a dependency that is down only makes the service unready."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        failures = await _failures(liveness)
        if failures:
            return JSONResponse({"status": "failing", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failures = await _failures([*checks, *liveness])
        if failures:
            return JSONResponse({"status": "unready", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestMetrics, service=service)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.error, exc.message, **exc.extra), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _ERROR_NAMES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else name.replace("_", " ")
        return JSONResponse(error_body(name, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return JSONResponse(error_body("invalid_request", "; ".join(problems) or "invalid request"), 400)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("internal_error", "unexpected server error"), status_code=500)
