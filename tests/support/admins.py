"""Callers with administrative power, made the way an operator bootstraps them: a registered
account promoted in the database (as `authsvc create-superuser` does), then signed in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent
from app.repositories import (
    AuditEventRepository,
    PermissionRepository,
    RoleRepository,
    UserRepository,
)
from tests.support.flows import bearer, password_grant, register, sign_in


async def grant(
    session: AsyncSession,
    email: str,
    *,
    superuser: bool = False,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
) -> None:
    """Make the user with `email` a superuser, give them existing `roles`, and give them
    `permissions` through a role of their own. Commits."""
    users = UserRepository(session)
    user = await users.get_by_email(email)
    assert user is not None, email
    granted = await RoleRepository(session).list_by_names(list(roles))
    codenames = list(permissions)
    if codenames:
        held = await PermissionRepository(session).list_by_codenames(codenames)
        assert len(held) == len(codenames), f"unknown permission among {codenames}"
        own = await RoleRepository(session).create(name=f"grant-{user.id}", permissions=held)
        granted.append(own)
    await users.update(user, is_superuser=superuser or user.is_superuser, roles=granted)
    await session.commit()


async def admin_headers(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    email: str = "root@example.com",
    *,
    superuser: bool = False,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
) -> dict[str, str]:
    """Register `email`, grant it power (see `grant`), sign in; the bearer header."""
    await register(client, email)
    async with sessions() as session:
        await grant(session, email, superuser=superuser, roles=roles, permissions=permissions)
    return bearer((await sign_in(client, email))["access_token"])


async def sign_in_holding(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    *permissions: str,
    scope: str | None = None,
) -> dict[str, Any]:
    """Register ada@example.com, give her `permissions` through a role of her own (see
    `grant`), sign in asking for `scope` (default: those permissions); the token response."""
    await register(client)
    async with sessions() as session:
        await grant(session, "ada@example.com", permissions=permissions)
    asked = " ".join(permissions) if scope is None else scope
    response = await password_grant(client, "ada@example.com", scope=asked)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def register_client(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    name: str = "billing",
    scopes: Iterable[str] = (),
    audiences: Iterable[str] = (),
) -> tuple[str, str]:
    """Register a service client through the admin API; its client_id and secret."""
    response = await client.post(
        "/admin/clients",
        json={"name": name, "scopes": list(scopes), "audiences": list(audiences)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return str(body["client_id"]), str(body["client_secret"])


async def audit_events(
    sessions: async_sessionmaker[AsyncSession], event_type: str
) -> list[AuditEvent]:
    """Every audit event of `event_type`, oldest first."""
    async with sessions() as session:
        return await AuditEventRepository(session).list_by(type=event_type)
