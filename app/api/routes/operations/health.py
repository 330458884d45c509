"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.api.deps import EngineDep, SettingsDep
from app.schemas.operations import LiveStatus, ReadyStatus
from app.services.operations.health import HealthService

router = APIRouter(prefix="/health", tags=["health"])


async def get_health_service(engine: EngineDep, settings: SettingsDep) -> HealthService:
    return HealthService(engine, timeout_seconds=settings.db_connect_timeout_seconds)


@router.get("/live", response_model=LiveStatus)
async def live() -> LiveStatus:
    """The process is up and serving requests."""
    return LiveStatus(status="ok")


@router.get(
    "/ready",
    response_model=ReadyStatus,
    responses={503: {"model": ReadyStatus, "description": "Database unreachable or not at head"}},
)
async def ready(service: Annotated[HealthService, Depends(get_health_service)]) -> JSONResponse:
    """Ready when the database answers and its schema is at the migration head."""
    readiness = await service.readiness()
    body = ReadyStatus(
        status="ok" if readiness.is_ready else "unavailable",
        database="ok" if readiness.database_reachable else "unreachable",
        schema_revision=readiness.schema_revision,
        expected_revision=readiness.expected_revision,
    )
    return JSONResponse(body.model_dump(), status_code=200 if readiness.is_ready else 503)
