"""Prometheus metrics: HTTP latency per route template, and the auth events services report.

Each app has its own `CollectorRegistry` (tests build many apps in one process). Services do
not import prometheus: they call `current_metrics()`, which returns the metrics of the app
serving the current request, or a no-op outside of one.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
LOGIN_RESULTS = ("ok", "failed")
GRANTS = ("password", "refresh_token", "client_credentials", "oauth")


class AuthEvents(Protocol):
    """What services report; implemented by `AuthMetrics` and by a no-op."""

    def login_ok(self) -> None: ...
    def login_failed(self) -> None: ...
    def token_issued(self, grant: str) -> None: ...
    def refresh_reuse(self) -> None: ...
    def throttled(self, limit: str) -> None: ...


class _NoMetrics:
    def login_ok(self) -> None:
        pass

    def login_failed(self) -> None:
        pass

    def token_issued(self, grant: str) -> None:
        pass

    def refresh_reuse(self) -> None:
        pass

    def throttled(self, limit: str) -> None:
        pass


_NO_METRICS = _NoMetrics()
_current: ContextVar[AuthEvents | None] = ContextVar("authsvc_metrics", default=None)


def current_metrics() -> AuthEvents:
    """The metrics of the app handling the current request; a no-op outside a request."""
    return _current.get() or _NO_METRICS


class AuthMetrics:
    """An app's metrics, registered on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.http_request_duration = Histogram(
            "authsvc_http_request_duration_seconds",
            "HTTP request latency, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.logins = Counter(
            "authsvc_logins",
            "Password sign-ins, by result.",
            ["result"],
            registry=self.registry,
        )
        self.tokens_issued = Counter(
            "authsvc_tokens_issued",
            "Token responses issued, by grant.",
            ["grant"],
            registry=self.registry,
        )
        self.refresh_token_reuse = Counter(
            "authsvc_refresh_token_reuse",
            "Spent refresh tokens replayed after the grace period (their family is revoked).",
            registry=self.registry,
        )
        self.throttled_requests = Counter(
            "authsvc_throttled",
            "Requests refused by a rate limit, by limit.",
            ["limit"],
            registry=self.registry,
        )
        # Known label values start at zero, so rates work before the first event.
        for result in LOGIN_RESULTS:
            self.logins.labels(result=result)
        for grant in GRANTS:
            self.tokens_issued.labels(grant=grant)

    def login_ok(self) -> None:
        self.logins.labels(result="ok").inc()

    def login_failed(self) -> None:
        self.logins.labels(result="failed").inc()

    def token_issued(self, grant: str) -> None:
        self.tokens_issued.labels(grant=grant).inc()

    def refresh_reuse(self) -> None:
        self.refresh_token_reuse.inc()

    def throttled(self, limit: str) -> None:
        self.throttled_requests.labels(limit=limit).inc()


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/admin/users/{user_id}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class MetricsMiddleware:
    """Times every HTTP request and makes `metrics` the `current_metrics()` while it runs."""

    def __init__(self, app: ASGIApp, metrics: AuthMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped to the server
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = _current.set(self.metrics)
        try:
            await self.app(scope, receive, record_status)
        finally:
            _current.reset(token)
            self.metrics.http_request_duration.labels(
                method=scope["method"], route=route_template(scope), status=str(status)
            ).observe(time.perf_counter() - started)
