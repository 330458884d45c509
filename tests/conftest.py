"""Shared fixtures: a real PostgreSQL and a SQLite database per test worker, migrated once.

Every database-backed test runs on both backends (the `backend` parameter). Tables are reset
after each test, so tests see a fresh schema without paying for a migration each time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from _pytest.nodeid import NodeId  # pytest's own node id type: see the hook below
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.models import Base
from app.runtime import install_runtime, runtime_of
from app.schema_migrations import upgrade_to_head
from tests.support.databases import (
    ResetDatabase,
    drop_postgres_database,
    fresh_postgres_url,
    make_settings,
    off_loop,
    worker_id,
)
from tests.support.state import FrozenClock

BACKENDS = ("postgresql", "sqlite")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `--dist loadgroup` keep each `xdist_group` on one worker again.

    pytest-xdist 3.8 marks a grouped test by rewriting `item._nodeid`, which pytest 9.2 no
    longer reads (its `nodeid` comes from `item._id`), so every group was spread over the
    workers and module fixtures such as three serve replicas started once per worker. This
    puts the group where pytest reads it; once xdist does that itself, the ids already end
    with the group and nothing changes here.
    """
    if not config.getoption("loadgroup", default=False):  # only in xdist workers
        return
    for item in items:
        groups = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        if not groups:
            continue
        suffix = f"@{'_'.join(groups)}"
        if not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(f"{item.nodeid}{suffix}")  # type: ignore[attr-defined]


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
