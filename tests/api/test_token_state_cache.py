"""The token-state cache in one process (PostgreSQL: its channel is LISTEN/NOTIFY): repeated
checks of a token read nothing from the database, and every change that ends or narrows access
is seen at once by the replica that made it, and within a second when made by another
connection. The triggers notify exactly the changes a check reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.runtime import runtime_of
from tests.support.admins import grant, take_back
from tests.support.databases import make_settings
from tests.support.flows import bearer, register, sign_in
from tests.support.mfa import enrol_totp
from tests.support.state import forge_user


@pytest.fixture
def settings_overrides(backend: str) -> dict[str, object]:
    if backend != "postgresql":
        pytest.skip("the cache listens to PostgreSQL's NOTIFY; on SQLite it is off")
    return {"auth_cache_ttl_seconds": 30}


@pytest.fixture
async def current(app: FastAPI) -> FastAPI:
    """The app once its cache's listener has proved the cache current."""
    cache = runtime_of(app).token_state_cache
    deadline = time.monotonic() + 5
    while not cache.is_current:
        assert time.monotonic() < deadline, "the token state listener never caught up"
        await asyncio.sleep(0.02)
    return app


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL the app's request engine runs while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = runtime_of(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def ada(client: httpx.AsyncClient) -> dict[str, Any]:
    await register(client, "ada@example.com")
    return await sign_in(client, "ada@example.com")


async def test_a_checked_token_is_checked_again_without_the_database(
    client: httpx.AsyncClient, current: FastAPI
) -> None:
    tokens = await ada(client)
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    await asyncio.sleep(0.3)  # the sign-in's own commit: a heartbeat after it is back

    with statements(current) as seen:
        for _ in range(5):
            me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
            assert me.status_code == 200

    assert seen == []


async def test_the_replica_that_ended_a_session_refuses_its_token_at_once(
    client: httpx.AsyncClient, current: FastAPI
) -> None:
    tokens = await ada(client)
    await asyncio.sleep(0.3)
    for _ in range(2):
        assert (
            await client.get("/users/me", headers=bearer(tokens["access_token"]))
        ).status_code == 200

    assert (
        await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204

    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401


async def test_a_change_by_another_connection_is_refused_within_a_second(
    client: httpx.AsyncClient, current: FastAPI, session: AsyncSession
) -> None:
    tokens = await ada(client)
    await asyncio.sleep(0.3)
    for _ in range(2):
        assert (
            await client.get("/users/me", headers=bearer(tokens["access_token"]))
        ).status_code == 200

    # Deactivated by a connection of the test's own (as by an operator's SQL): the app made no
    # commit to wait for, only the notification tells it.
    await forge_user(session, "ada@example.com", is_active=False)
    started = time.monotonic()
    while (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200:
        assert time.monotonic() - started < 1.0, "still accepted a second after the change"
        await asyncio.sleep(0.01)


async def test_a_permission_taken_away_stops_the_admin_routes_at_once(
    client: httpx.AsyncClient, current: FastAPI
) -> None:
    tokens = await ada(client)
    sessions = runtime_of(current).session_factory
    async with sessions() as session:
        await grant(session, "ada@example.com", permissions=["users:read"])
    await asyncio.sleep(0.3)
    for _ in range(2):
        assert (
            await client.get("/admin/users", headers=bearer(tokens["access_token"]))
        ).status_code == 200

    async with sessions() as session:
        await take_back(session, "ada@example.com")

    assert (
        await client.get("/admin/users", headers=bearer(tokens["access_token"]))
    ).status_code == 403


async def test_turning_on_a_second_factor_ends_the_other_sessions_at_once(
    client: httpx.AsyncClient, current: FastAPI
) -> None:
    tokens = await ada(client)
    await asyncio.sleep(0.3)
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    other = await sign_in(client, "ada@example.com")

    await enrol_totp(client, other["access_token"])

    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401


# --- the triggers ---------------------------------------------------------------------------


@pytest.fixture
async def notifications(settings: Settings) -> AsyncIterator[list[str]]:
    """Every payload notified on the token-state channel while the test runs."""
    url = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    heard: list[str] = []
    await connection.add_listener(
        "authsvc_token_state",
        lambda *args: heard.append(args[3]) if not args[3].startswith("heartbeat:") else None,
    )
    yield heard
    await connection.close()


async def settle() -> None:
    await asyncio.sleep(0.2)


async def test_a_sign_in_notifies_nothing_and_a_sign_out_names_its_session(
    client: httpx.AsyncClient, notifications: list[str]
) -> None:
    tokens = await ada(client)
    me = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()
    await settle()
    assert notifications == []  # registering and signing in change nothing a check trusted

    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    await settle()

    assert len(notifications) == 1
    assert notifications[0].startswith("session:")
    assert me["id"] not in notifications[0]


async def test_a_rolled_back_change_notifies_nothing(
    client: httpx.AsyncClient,
    notifications: list[str],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await ada(client)
    await settle()
    async with session_factory() as session:
        await forge_user(session, "ada@example.com", token_version=7)
    await settle()
    assert len(notifications) == 1  # the committed one

    async with session_factory() as session:
        await session.execute(text("UPDATE users SET is_active = false"))
        await session.rollback()
    await settle()

    assert len(notifications) == 1


async def test_account_changes_notify_the_user_and_role_changes_everyone(
    client: httpx.AsyncClient,
    notifications: list[str],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    tokens = await ada(client)
    user_id = (await client.get("/users/me", headers=bearer(tokens["access_token"]))).json()["id"]
    await settle()

    await client.patch(
        "/users/me", json={"full_name": "Ada"}, headers=bearer(tokens["access_token"])
    )
    async with session_factory() as session:
        await grant(session, "ada@example.com", permissions=["users:read"])
    await settle()

    assert f"user:{user_id}" in notifications
    assert "all" in notifications  # the role got a permission: anyone holding it may change


def test_the_cache_is_off_where_no_channel_can_keep_it_current(tmp_path: Any) -> None:
    sqlite = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", auth_cache_ttl_seconds=30)
    pooled = make_settings(
        "postgresql+asyncpg://u@pgbouncer/db", auth_cache_ttl_seconds=30, db_statement_cache_size=0
    )
    direct = pooled.model_copy(update={"auth_cache_listen_url": "postgresql+asyncpg://u@db/db"})
    off = pooled.model_copy(update={"auth_cache_ttl_seconds": 0, "db_statement_cache_size": 100})

    assert sqlite.token_state_listen_url is None
    assert pooled.token_state_listen_url is None  # behind PgBouncer: no LISTEN there
    assert direct.token_state_listen_url == "postgresql+asyncpg://u@db/db"
    assert off.token_state_listen_url is None
