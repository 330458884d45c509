"""Shared fixtures: a real PostgreSQL and a SQLite database per test worker, migrated once.

Every database-backed test runs on both backends (the `backend` parameter). Tables are reset
after each test, so tests see a fresh schema without paying for a migration each time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.models import Base
from app.runtime import install_runtime, runtime_of
from app.schema_migrations import upgrade_to_head
from tests.state import FrozenClock

DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ("postgresql", "sqlite")
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
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this worker and backend, alive for the whole run."""
    if backend == "postgresql":
        name = f"authsvc_test_{worker_id()}"
        url = fresh_postgres_url(name)
        off_loop(upgrade_to_head, url)
        yield url
        drop_postgres_database(name)
    else:
        path: Path = tmp_path_factory.mktemp("sqlite") / "authsvc.db"
        url = f"sqlite+aiosqlite:///{path}"
        off_loop(upgrade_to_head, url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url))
    yield engine
    await engine.dispose()


# Rows the migrations insert (built-in permissions and the admin role): put back after each
# test, so every test starts from what a freshly migrated database holds.
SEEDED_TABLES = ("permissions", "roles", "role_permissions")
ResetDatabase = Callable[[], Awaitable[None]]


@pytest.fixture(scope="session")
async def reset_database(engine: AsyncEngine) -> ResetDatabase:
    """Empties every table and restores the migrations' seed rows."""
    async with engine.connect() as connection:
        seed = {
            name: [
                dict(row._mapping)
                for row in await connection.execute(Base.metadata.tables[name].select())
            ]
            for name in SEEDED_TABLES
        }
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]

    async def reset() -> None:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                await connection.execute(
                    text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                )
            else:
                for table in tables:
                    await connection.execute(text(f"DELETE FROM {table}"))
            for name in SEEDED_TABLES:
                if seed[name]:
                    await connection.execute(Base.metadata.tables[name].insert(), seed[name])

    return reset


@pytest.fixture
async def session_factory(
    engine: AsyncEngine, reset_database: ResetDatabase
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions over the worker's database; every table is reset after the test."""
    yield create_session_factory(engine)
    await reset_database()


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development key ring per worker: generating RSA keys per test would be slow."""
    return tmp_path_factory.mktemp("keys") / "ring"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings of the `app` under test."""
    return {}


@pytest.fixture
def settings(database_url: str, keys_dir: Path, settings_overrides: dict[str, object]) -> Settings:
    overrides = {"keys_dir": keys_dir, **settings_overrides}
    url = str(overrides.pop("database_url", database_url))
    return make_settings(url, **overrides)


@pytest.fixture
async def app(settings: Settings, reset_database: ResetDatabase) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app
    await reset_database()


@pytest.fixture
def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    """Sessions over the database of the app under test, to set up or check state directly."""
    return runtime_of(app).session_factory


@pytest.fixture
def clock(app: FastAPI) -> FrozenClock:
    """Replace the app's clock with one the test advances by hand."""
    clock = FrozenClock()
    install_runtime(app, replace(runtime_of(app), clock=clock))
    return clock


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
