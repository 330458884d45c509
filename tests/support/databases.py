"""Databases for the tests: PostgreSQL databases made and dropped per worker, test settings,
and a way to run blocking code off the tests' event loop. The fixtures over them are in
`tests/conftest.py`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings

DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
T = TypeVar("T")


def admin_database_url() -> str:
    return os.environ.get("AUTH_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def _asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def _recreate_postgres_database(name: str) -> None:
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(admin_database_url()), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        # A missing PostgreSQL is a failure, never a skip: the suite must prove both backends.
        pytest.fail(f"PostgreSQL is not reachable at {admin_database_url()}: {exc}")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_postgres_database(name: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_database_url()), timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run blocking code that starts its own event loop (asyncio.run, Alembic) on a thread,
    so it never touches the loop pytest-asyncio keeps for the tests."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def fresh_postgres_url(name: str) -> str:
    """Create (or re-create) an empty PostgreSQL database and return its SQLAlchemy URL."""
    off_loop(asyncio.run, _recreate_postgres_database(name))
    url = make_url(admin_database_url()).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    off_loop(asyncio.run, _drop_postgres_database(name))


def worker_id() -> str:
    """Unique per test process, also across concurrent runs on one machine: databases named
    after it never collide."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    return f"{run}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test app: nothing read from `.env`, the database given, and cheap
    argon2 parameters (the real defaults have a test of their own)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "auto_migrate": False,
        "environment": "development",
        "argon2_memory_cost_kib": 1024,
        "argon2_time_cost": 1,
        # Off: most tests change state through a connection of their own (forged rows), which
        # a cache sees a millisecond later, not at once. The cache's tests turn it on
        # (tests/api/test_token_state_cache.py), and serve processes run with the default.
        "auth_cache_ttl_seconds": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# The type of the `reset_database` fixture: empties every table, restores the seed rows.
ResetDatabase = Callable[[], Awaitable[None]]
