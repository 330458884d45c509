"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.schema_migrations import head_revision
from tests.support.databases import (
    drop_postgres_database,
    fresh_postgres_url,
    make_settings,
    worker_id,
)


async def _get(settings: Settings, path: str) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


async def test_live_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_is_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["schema_revision"] == head_revision()


async def test_not_ready_when_database_is_unreachable() -> None:
    # Port 1 on loopback refuses connections at once.
    settings = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", db_connect_timeout_seconds=2
    )

    response = await _get(settings, "/health/ready")

    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.fixture
async def unmigrated_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgresql":
        name = f"authsvc_unmigrated_{worker_id()}"
        yield fresh_postgres_url(name)
        drop_postgres_database(name)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


async def test_not_ready_when_schema_is_not_migrated(unmigrated_database_url: str) -> None:
    response = await _get(make_settings(unmigrated_database_url), "/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["schema_revision"] is None
    assert body["expected_revision"] == head_revision()


async def test_sqlite_default_is_migrated_on_start_up(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'a.db'}", auto_migrate=None)

    response = await _get(settings, "/health/ready")

    assert response.status_code == 200
    assert (tmp_path / "var" / "a.db").exists()
