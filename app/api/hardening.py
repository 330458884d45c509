"""HTTP hardening: security headers, CORS, a request body size limit."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.docs import DOCS_PAGES
from app.api.problems import PROBLEM_JSON, TYPE_PREFIX
from app.config import Settings

# Nothing this API returns is a document to render: no scripts, frames, or fetches at all.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their bundles from this service (app.api.docs) and start them with
# inline scripts; ReDoc inlines its styles and runs a blob: web worker. Nothing from elsewhere.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; "
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"

CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Response headers a browser frontend must read: when to retry, why a token was refused, and
# the id to quote in a report.
CORS_EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate", "X-Request-ID")


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response, errors included.

    Headers a response already sets win, so routes keep their own `Cache-Control` (the JWKS
    and discovery documents are publicly cacheable); everything else is `no-store`, since
    tokens and user data must never sit in a shared cache.
    """

    def __init__(
        self, app: ASGIApp, *, hsts: bool, docs_paths: Iterable[str] = ("/docs", "/redoc")
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        csp = DOCS_CSP if path in self.docs_paths else API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    """Raised from `receive` to stop the app reading a body that passed the limit."""


class BodySizeLimitMiddleware:
    """Answers 413 problem+json to bodies over `max_bytes`, without buffering them.

    A declared Content-Length over the limit is refused before the app runs. A chunked body is
    counted as the app reads it; once it passes the limit, reading fails and whatever the app
    would answer (FastAPI makes it a 400) is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large:
                # The app's own answer to the failed read; the 413 below replaces it.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        body = json.dumps(
            {
                "type": TYPE_PREFIX + "payload-too-large",
                "title": status.phrase,
                "status": status.value,
                "detail": f"The request body is larger than {self.max_bytes} bytes.",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status.value,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read: do not reuse the connection for it.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Add security headers, CORS (when origins are configured) and the body size limit to
    `app`."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Added after the limit, so it runs outside it: a 413 still carries CORS headers and
        # the browser lets the frontend read it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )

    docs_paths = DOCS_PAGES if settings.should_serve_docs else ()
    hsts = urlsplit(settings.public_url).scheme == "https"
    build_stack = app.build_middleware_stack

    def build_stack_with_headers() -> ASGIApp:
        return SecurityHeadersMiddleware(build_stack(), hsts=hsts, docs_paths=docs_paths)

    # Starlette puts ServerErrorMiddleware, which answers unhandled errors with a 500, outside
    # every added middleware; wrapping the whole stack is the only way to reach that response.
    app.build_middleware_stack = build_stack_with_headers  # type: ignore[method-assign]
