"""Liveness and readiness: is the database reachable and migrated to the code's head?"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.repositories.common.database_state import schema_revision
from app.schema_migrations import head_revision

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    database_reachable: bool
    schema_revision: str | None
    expected_revision: str | None

    @property
    def is_ready(self) -> bool:
        return self.database_reachable and self.schema_revision == self.expected_revision


class HealthService:
    def __init__(self, engine: AsyncEngine, timeout_seconds: float) -> None:
        self.engine = engine
        self.timeout_seconds = timeout_seconds

    async def readiness(self) -> Readiness:
        """Probe the database within the timeout; never raises for an unreachable database."""
        expected = head_revision()
        try:
            revision = await asyncio.wait_for(self._schema_revision(), self.timeout_seconds)
        except Exception as exc:  # any failure, timeouts included, means "not ready"
            logger.warning("readiness probe failed: %s", type(exc).__name__)
            return Readiness(False, None, expected)
        return Readiness(True, revision, expected)

    async def _schema_revision(self) -> str | None:
        async with self.engine.connect() as connection:
            return await schema_revision(connection)
