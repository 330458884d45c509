"""A request stuck behind a database lock fails with 503 after the statement timeout instead
of holding its connection (and the client) indefinitely. The lock is real: another
connection holds the users table (PostgreSQL) or the writer lock (SQLite)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.locks import users_locked
from tests.support.flows import PASSWORD, assert_problem

pytestmark = pytest.mark.usefixtures("app")

STATEMENT_TIMEOUT = 0.3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"db_statement_timeout_seconds": STATEMENT_TIMEOUT}


async def test_a_request_stuck_behind_a_lock_gets_503_after_the_statement_timeout(
    client: httpx.AsyncClient, backend: str, engine: AsyncEngine, database_url: str
) -> None:
    async with users_locked(backend, engine, database_url):
        started = time.monotonic()
        # Bounded, so that a missing timeout fails the test instead of waiting on the lock
        # this very test holds.
        response = await asyncio.wait_for(
            client.post(
                "/auth/register", json={"email": "stuck@example.com", "password": PASSWORD}
            ),
            timeout=10,
        )
        elapsed = time.monotonic() - started

    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    # The timeout, plus password hashing and slack for a busy 2-core machine; far from the
    # 15 s default and from the client's own patience.
    assert elapsed < STATEMENT_TIMEOUT + 2.5, elapsed
    # Nothing half-written: once the lock is gone the same registration succeeds.
    again = await client.post(
        "/auth/register", json={"email": "stuck@example.com", "password": PASSWORD}
    )
    assert again.status_code == 201, again.text
