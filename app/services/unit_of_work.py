"""The transaction boundary every service method runs inside."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit what the block wrote if it finishes; roll all of it back if it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
