"""Prometheus metrics: HTTP latency per route template, the auth events services report, and
the outbox's deliveries.

Each app has its own `CollectorRegistry` (tests build many apps in one process). Services do
not import prometheus: they call `current_metrics()`, which returns the metrics of the app
serving the current request, or a no-op outside of one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import Scope

UNMATCHED_ROUTE = "unmatched"
LOGIN_RESULTS = ("ok", "failed")
GRANTS = ("password", "refresh_token", "client_credentials", "oauth")
OUTBOX_KINDS = ("mail",)


class AuthEvents(Protocol):
    """What services report; implemented by `AuthMetrics` and by a no-op."""

    def login_ok(self) -> None: ...
    def login_failed(self) -> None: ...
    def token_issued(self, grant: str) -> None: ...
    def refresh_reuse(self) -> None: ...
    def throttled(self, limit: str) -> None: ...


class OutboxEvents(Protocol):
    """What the outbox's dispatcher reports; implemented by `AuthMetrics`."""

    def outbox_delivered(self, kind: str, count: int = 1) -> None: ...
    def outbox_retried(self, kind: str) -> None: ...
    def outbox_failed(self, kind: str) -> None: ...
    def outbox_backlog(self, pending: int, oldest_created_at: datetime | None) -> None: ...


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


@contextmanager
def metrics_bound(metrics: AuthMetrics) -> Iterator[None]:
    """Make `metrics` what `current_metrics()` returns inside the block (one request)."""
    token = _current.set(metrics)
    try:
        yield
    finally:
        _current.reset(token)


class AuthMetrics:
    """An app's metrics, registered on a registry of its own."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self._clock = clock
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
        # The outbox: counters of this process's dispatcher; the gauges describe the shared
        # queue as this process last saw it (every process reports the same queue: take the
        # max across processes, not the sum).
        self.outbox_delivered_messages = Counter(
            "authsvc_outbox_delivered",
            "Outbox messages delivered by this process, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_failed_messages = Counter(
            "authsvc_outbox_failed",
            "Outbox messages given up by this process (attempts exhausted or unreadable), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_retries = Counter(
            "authsvc_outbox_retries",
            "Failed outbox delivery attempts scheduled for a retry, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_queued = Gauge(
            "authsvc_outbox_queued",
            "Outbox messages waiting for delivery (neither delivered nor given up).",
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "authsvc_outbox_oldest_age_seconds",
            "Age of the oldest outbox message waiting for delivery (0 when none waits).",
            registry=self.registry,
        )
        self._outbox_oldest: datetime | None = None
        # Computed at scrape time: the age keeps growing between two looks at the queue.
        self.outbox_oldest_age.set_function(self._outbox_oldest_age)
        # Known label values start at zero, so rates work before the first event.
        for result in LOGIN_RESULTS:
            self.logins.labels(result=result)
        for grant in GRANTS:
            self.tokens_issued.labels(grant=grant)
        for kind in OUTBOX_KINDS:
            for counter in (
                self.outbox_delivered_messages,
                self.outbox_failed_messages,
                self.outbox_retries,
            ):
                counter.labels(kind=kind)

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

    def outbox_delivered(self, kind: str, count: int = 1) -> None:
        self.outbox_delivered_messages.labels(kind=kind).inc(count)

    def outbox_retried(self, kind: str) -> None:
        self.outbox_retries.labels(kind=kind).inc()

    def outbox_failed(self, kind: str) -> None:
        self.outbox_failed_messages.labels(kind=kind).inc()

    def outbox_backlog(self, pending: int, oldest_created_at: datetime | None) -> None:
        self.outbox_queued.set(pending)
        self._outbox_oldest = oldest_created_at

    def _outbox_oldest_age(self) -> float:
        oldest = self._outbox_oldest
        if oldest is None:
            return 0.0
        return max((self._clock() - oldest).total_seconds(), 0.0)


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/admin/users/{user_id}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
