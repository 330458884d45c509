"""Where the database stands, for the readiness probe: whether it answers, and at which
migration its schema is."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.schema_migrations import current_revision

_PING = text("SELECT 1")


async def schema_revision(connection: AsyncConnection) -> str | None:
    """The Alembic revision the database's schema is at (None before the first migration),
    after one round trip that proves the database answers; raises if it does not."""
    await connection.execute(_PING)
    return await connection.run_sync(current_revision)
