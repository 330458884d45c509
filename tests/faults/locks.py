"""Real database locks held from outside the service, to make its requests wait."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def users_locked(backend: str, engine: AsyncEngine, database_url: str) -> AsyncIterator[None]:
    """Hold a lock that blocks every registration until the block ends."""
    if backend == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            yield
            await connection.rollback()
        return
    holder = sqlite3.connect(str(make_url(database_url).database), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the one writer lock of the file
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()
