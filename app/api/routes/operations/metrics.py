"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.runtime import runtime_of

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The app's metrics in the Prometheus text format."""
    registry = runtime_of(request.app).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
