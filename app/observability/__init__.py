"""Logs, request ids and metrics: `install_observability` wires them into an app."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.observability.logging import configure_logging
from app.observability.metrics import AuthMetrics, current_metrics
from app.observability.middleware import ObservabilityMiddleware

__all__ = ["AuthMetrics", "configure_logging", "current_metrics", "install_observability"]


def install_observability(app: FastAPI, settings: Settings) -> AuthMetrics:
    """Give `app` request ids, an access log and metrics; returns the metrics, a registry of
    their own, which the app's runtime keeps for its `GET /metrics` route to serve.

    Also configures JSON logging, once per process (the first app built wins; later calls,
    e.g. from tests building many apps, change nothing).
    """
    configure_logging(settings)
    metrics = AuthMetrics()
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return metrics
