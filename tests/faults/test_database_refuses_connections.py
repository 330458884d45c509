"""PostgreSQL refuses or ends the service's connections, as an operator, a restart or a
failover does: every request answers 503 with `Retry-After` (never 500), and the service
recovers by itself once the database takes connections again. Done for real, from an
administrator's connection: `ALTER DATABASE ... ALLOW_CONNECTIONS false` and
`pg_terminate_backend`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.faults.database_calls import assert_served, assert_unavailable, database_calls
from tests.faults.locks import users_locked
from tests.faults.server_admin import connections_refused, end_backends, wait_for_lock_waiters

pytestmark = pytest.mark.usefixtures("app")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def _postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("an embedded SQLite file has no server to refuse connections")


async def test_a_database_refusing_connections_answers_503_then_recovers(
    client: httpx.AsyncClient, sessions: Sessions, database_url: str
) -> None:
    calls = await database_calls(client, sessions)

    async with connections_refused(database_url):
        for call in calls.values():
            assert_unavailable(await call())
        refused_in_parallel = await asyncio.gather(*(call() for call in calls.values()))
        for response in refused_in_parallel:
            assert_unavailable(response)

    for name, call in calls.items():
        assert_served(name, await call())


async def test_requests_whose_connections_the_server_ends_answer_503_never_500(
    client: httpx.AsyncClient, sessions: Sessions, database_url: str, engine: AsyncEngine
) -> None:
    calls = await database_calls(client, sessions)

    for _round in range(3):
        # Held behind a lock, so that their backends are busy with them when they are ended.
        async with users_locked("postgresql", engine, database_url):
            pending = [asyncio.create_task(call()) for call in calls.values() for _ in range(3)]
            await wait_for_lock_waiters(database_url, len(pending))
            assert await end_backends(database_url, waiting_on_a_lock=True) == len(pending)
            for response in await asyncio.gather(*pending):
                assert_unavailable(response)

    # A restart ends the idle pooled connections too: the next requests get fresh ones.
    await end_backends(database_url)
    for name, call in calls.items():
        assert_served(name, await call())
