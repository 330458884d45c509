"""Parallel requests at the real service on a socket (tests/support/live_server.py), with the
database checked afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.models import ActionPurpose
from app.services.accounts.action_tokens import ActionTokens
from tests.support.admins import find_user, grant
from tests.support.flows import PASSWORD, register, sign_in
from tests.support.live_server import LiveService, live_service, service_client

__all__ = ["live_service", "service_client"]  # fixtures

# Enough connections that every request of a burst is on the wire at once.
PARALLEL = 20


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Every burst comes from one address and many fail on purpose: throttling would answer
    # 429 first and hide the race these tests are about.
    return {"rate_limit_enabled": False}


@pytest.fixture
async def http(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a connection per request of a burst."""
    limits = httpx.Limits(max_connections=PARALLEL * 2, max_keepalive_connections=PARALLEL * 2)
    async with httpx.AsyncClient(base_url=live_service.url, limits=limits, timeout=30) as client:
        yield client


async def burst(calls: Iterable[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    """Start every call together (a barrier releases them at once); their responses in order.
    No answer may be a server error."""
    pending = list(calls)
    start = asyncio.Event()

    async def when_released(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        await start.wait()
        return await call()

    tasks = [asyncio.create_task(when_released(call)) for call in pending]
    await asyncio.sleep(0)  # every task is now waiting on the event
    start.set()
    responses = await asyncio.gather(*tasks)
    server_errors = [
        (r.request.url.path, r.status_code, r.text) for r in responses if r.status_code >= 500
    ]
    assert not server_errors, server_errors
    return responses


def statuses(responses: Iterable[httpx.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


async def rows(engine: AsyncEngine, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        result = await connection.execute(text(sql), parameters)
        return [tuple(row) for row in result]


async def scalar(engine: AsyncEngine, sql: str, **parameters: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), parameters)


async def no_orphans(engine: AsyncEngine) -> None:
    """Every row that points at another points at one that exists (foreign keys enforced or
    not, e.g. on a SQLite connection that forgot the pragma)."""
    references = {
        "sessions": ("user_id", "users"),
        "action_tokens": ("user_id", "users"),
        "oauth_accounts": ("user_id", "users"),
        "user_roles": ("user_id", "users"),
        "refresh_tokens": ("session_id", "sessions"),
    }
    for table, (column, parent) in references.items():
        count = await scalar(
            engine,
            f"SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM {parent})",
        )
        assert count == 0, f"{count} rows of {table} point at missing {parent}"
    for table, column in (("user_roles", "role_id"), ("role_permissions", "role_id")):
        count = await scalar(
            engine, f"SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM roles)"
        )
        assert count == 0, f"{count} rows of {table} point at missing roles"
    count = await scalar(
        engine,
        "SELECT count(*) FROM role_permissions "
        "WHERE permission_id NOT IN (SELECT id FROM permissions)",
    )
    assert count == 0, f"{count} rows of role_permissions point at missing permissions"


@pytest.fixture
async def superuser(http: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, str]:
    """Bearer header of a superuser of the live service."""
    await register(http, "root@example.com")
    async with async_sessionmaker(engine, class_=AsyncSession)() as session:
        await grant(session, "root@example.com", superuser=True)
    tokens = await sign_in(http, "root@example.com", PASSWORD)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def issue_link(engine: AsyncEngine, email: str, purpose: ActionPurpose) -> str:
    """A single-use link token for the account with `email`, as the mailer would send it."""
    async with async_sessionmaker(engine, class_=AsyncSession)() as session:
        user = await find_user(session, email)
        # The live service mails nowhere a test can read: the link comes from the building
        # block the mailing use cases issue it with.
        raw = await ActionTokens(session).issue(
            user, purpose, valid_for=timedelta(hours=1), now=datetime.now(UTC)
        )
        await session.commit()
        return raw
