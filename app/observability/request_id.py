"""Request ids: taken from `X-Request-ID` when sane, else generated; on every log line."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

access_logger = structlog.stdlib.get_logger("app.access")


def request_id_from(value: str | None) -> str:
    """`value` if it is a safe id to echo and log (<= 128 of `[A-Za-z0-9._-]`), else a new one."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Binds the request id to structlog's context for the request, echoes it on the response
    and logs one access line (method, path without query string, status, duration)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            await self.app(scope, receive, send_with_id)
        finally:
            access_logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],  # never the query string: it may carry codes or tokens
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**tokens)
