"""One middleware observes every HTTP request: its id, its access log line, its metrics."""

from __future__ import annotations

import time

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import AuthMetrics, metrics_bound, route_template
from app.observability.request_id import REQUEST_ID_HEADER, request_id_from

access_logger = structlog.stdlib.get_logger("app.access")


class ObservabilityMiddleware:
    """Per request: binds the request id to structlog's context and echoes it on the
    response, makes the app's `metrics` the current ones, and at the end logs one access line
    (method, path without query string, status, duration) and records the latency by route."""

    def __init__(self, app: ASGIApp, metrics: AuthMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value for name, value in scope["headers"] if name == b"x-request-id"), None
        )
        request_id = request_id_from(incoming.decode("latin-1") if incoming else None)
        # For the 500 handler, which Starlette runs outside this middleware.
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # unless a response starts: an exception escaped to the server
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            with metrics_bound(self.metrics):
                await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.http_request_duration.labels(
                method=scope["method"], route=route_template(scope), status=str(status)
            ).observe(seconds)
            access_logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],  # never the query string: it may carry codes or tokens
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**tokens)
