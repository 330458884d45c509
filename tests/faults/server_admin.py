"""What a PostgreSQL operator (or a restart, or a failover) does to the service's
connections, done for real from an administrator's connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.databases import admin_database_url


def database_name(database_url: str) -> str:
    return str(make_url(database_url).database)


@asynccontextmanager
async def administrator() -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the server's maintenance database."""
    dsn = make_url(admin_database_url()).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=10)
    try:
        yield connection
    finally:
        await connection.close()


async def end_backends(database_url: str, *, waiting_on_a_lock: bool = False) -> int:
    """`pg_terminate_backend` (SQLSTATE 57P01) every connection to the database, or only
    those waiting on a lock; how many were ended."""
    async with administrator() as admin:
        ended = await admin.fetchval(
            """
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = $1 AND pid <> pg_backend_pid()
              AND (NOT $2 OR wait_event_type = 'Lock')
            """,
            database_name(database_url),
            waiting_on_a_lock,
        )
    return int(ended)


async def wait_for_lock_waiters(database_url: str, count: int, *, within: float = 10) -> None:
    """Return once `count` connections to the database wait on a lock."""
    async with administrator() as admin:
        async with asyncio.timeout(within):
            while True:
                waiting = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND wait_event_type = 'Lock'",
                    database_name(database_url),
                )
                if waiting >= count:
                    return
                await asyncio.sleep(0.02)


@asynccontextmanager
async def connections_refused(database_url: str) -> AsyncIterator[None]:
    """The database refuses new connections (`ALLOW_CONNECTIONS false`: SQLSTATE 55000) and
    its open ones are ended, until the block ends."""
    name = database_name(database_url)
    async with administrator() as admin:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await end_backends(database_url)
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
