"""PostgreSQL aborts a transaction for a deadlock (40P01) or a serialization failure (40001):
the service runs the whole unit of work again, up to 3 more times, and answers as if nothing
happened; still conflicting after that, it answers 503 with `Retry-After`, never 500, and
leaves nothing half-written. The conflicts are real: a deadlock with another connection, and
a trigger raising SQLSTATE 40001 (the rows a test cannot easily race into one on demand)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.database_calls import assert_unavailable
from tests.faults.server_admin import wait_for_lock_waiters
from tests.support.flows import refresh, register_and_sign_in

pytestmark = pytest.mark.usefixtures("app")

Conflicts = Callable[[int], Awaitable[None]]


@pytest.fixture(autouse=True)
def _postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no deadlocks, no serialization failures")


@pytest.fixture
async def outsider(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another client of the service's database."""
    dsn = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=10)
    yield connection
    await connection.close()


@pytest.fixture
async def refresh_conflicts(engine: AsyncEngine) -> AsyncIterator[Conflicts]:
    """`await refresh_conflicts(n)`: the next `n` attempts to store a refresh token abort with
    a serialization failure. The attempts are counted by a sequence, which rollbacks leave
    alone, so `attempts` tells how often the service tried."""
    async with engine.begin() as connection:
        await connection.execute(text("CREATE SEQUENCE refresh_attempts"))
        await connection.execute(text("CREATE TABLE refresh_conflicts (failures int NOT NULL)"))
        await connection.execute(
            text("""
            CREATE FUNCTION abort_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('refresh_attempts') <= (SELECT failures FROM refresh_conflicts) THEN
                    RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure';
                END IF;
                RETURN NEW;
            END $$
            """)
        )

    async def arrange(failures: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO refresh_conflicts VALUES (:n)"), {"n": failures}
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER abort_refresh BEFORE INSERT ON refresh_tokens"
                    " FOR EACH ROW EXECUTE FUNCTION abort_refresh()"
                )
            )

    yield arrange
    async with engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER IF EXISTS abort_refresh ON refresh_tokens"))
        await connection.execute(text("DROP FUNCTION abort_refresh"))
        await connection.execute(text("DROP TABLE refresh_conflicts"))
        await connection.execute(text("DROP SEQUENCE refresh_attempts"))


async def attempts(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT last_value FROM refresh_attempts")) or 0)


async def refresh_tokens_stored(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM refresh_tokens")) or 0)


async def test_a_refresh_that_deadlocks_with_another_transaction_is_run_again_and_succeeds(
    client: httpx.AsyncClient, outsider: asyncpg.Connection, database_url: str, engine: AsyncEngine
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")

    # The other transaction takes the rows in the opposite order: the refresh token first,
    # then the session the refresh holds. It waits long before looking for a deadlock, so
    # PostgreSQL picks the refresh as the victim.
    async with outsider.transaction():
        await outsider.execute("SET LOCAL deadlock_timeout = '60s'")
        await outsider.execute("SELECT 1 FROM refresh_tokens FOR UPDATE")
        refreshing = asyncio.create_task(refresh(client, tokens["refresh_token"]))
        await wait_for_lock_waiters(database_url, 1)  # the refresh holds the session, waits
        # Granted only once the refresh's first attempt was aborted and rolled back.
        await asyncio.wait_for(outsider.execute("SELECT 1 FROM sessions FOR UPDATE"), 10)

    response = await asyncio.wait_for(refreshing, 10)
    assert response.status_code == 200, response.text
    assert (await refresh(client, response.json()["refresh_token"])).status_code == 200
    assert await refresh_tokens_stored(engine) == 3  # no successor stored twice


async def test_a_refresh_aborted_by_serialization_failures_succeeds_on_a_retry(
    client: httpx.AsyncClient, refresh_conflicts: Conflicts, engine: AsyncEngine
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    await refresh_conflicts(3)

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert await attempts(engine) == 4
    assert await refresh_tokens_stored(engine) == 2


async def test_a_refresh_still_conflicting_after_three_retries_answers_503_and_writes_nothing(
    client: httpx.AsyncClient, refresh_conflicts: Conflicts, engine: AsyncEngine
) -> None:
    tokens = await register_and_sign_in(client, "ada@example.com")
    await refresh_conflicts(4)

    response = await refresh(client, tokens["refresh_token"])

    assert_unavailable(response)
    assert response.headers["retry-after"] == "1"
    assert await attempts(engine) == 4  # bounded: the first run and 3 retries
    # Not spent by the attempts that failed: the same token works once the conflict is over.
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
