"""Logs, request ids and metrics: `install_observability` wires them into an app."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.routes import metrics as metrics_routes
from app.config import Settings
from app.observability.logging import configure_logging
from app.observability.metrics import AuthMetrics, MetricsMiddleware, current_metrics
from app.observability.request_id import RequestIdMiddleware

__all__ = ["AuthMetrics", "configure_logging", "current_metrics", "install_observability"]


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Give `app` request ids, an access log, metrics (`app.state.metrics`, `GET /metrics`).

    Also configures JSON logging, once per process (the first app built wins; later calls,
    e.g. from tests building many apps, change nothing).
    """
    configure_logging(settings)
    app.state.metrics = AuthMetrics()
    # The last middleware added is the outermost: the request id is bound before timing.
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(metrics_routes.router)
