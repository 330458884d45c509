"""Callers with administrative power, made the way an operator bootstraps them: a registered
account given power by the admin use cases run as the operator (what `authsvc create-superuser`
does), then signed in. Also the other account changes an administrator makes, run the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.models import AuditEvent, User
from app.repositories import AuditEventRepository
from app.security.audit_hmac import AuditHmac
from app.services.admin.roles import RoleAdminService
from app.services.admin.users import UserAdminService, UserSearch
from app.services.common.authorization import OPERATOR
from app.services.common.caller import Caller
from app.services.common.context import ServiceContext
from app.services.common.rate_limits import RateLimiter
from tests.support.databases import make_settings
from tests.support.flows import bearer, password_grant, register, sign_in

# The command line's caller: no address, no user agent.
CALLER = Caller()


class _Unused:
    """What the administrator's use cases run here never need (hashing, mail, deferred work):
    touching it fails the test instead of doing something unseen."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an administrator's use case reached for {self._what} ({name})")


def operator_context(session: AsyncSession) -> ServiceContext:
    """The context the command line gives the use cases it runs as the operator, over the
    database of `session`."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine), engine
    settings = make_settings(engine.url.render_as_string(hide_password=False))
    return ServiceContext(
        settings=settings,
        hasher=_Unused("the password hasher"),  # type: ignore[arg-type]
        limiter=RateLimiter(settings),
        outbox=_Unused("the mail outbox"),
        deferred=_Unused("deferred work"),
        audit_hmac=AuditHmac(settings),
    )


async def find_user(session: AsyncSession, email: str) -> User:
    """The account with `email`, looked up the way the admin user search does."""
    wanted = email.strip().lower()
    users = UserAdminService(session, operator_context(session))
    page = await users.list_users(OPERATOR, UserSearch(query=wanted), limit=100)
    matches = [user for user in page.items if user.email == wanted]
    assert len(matches) == 1, email
    return matches[0]


def own_role(user_id: uuid.UUID) -> str:
    """The name of the role `grant` makes to give one user `permissions`."""
    return f"grant-{user_id}"


async def grant(
    session: AsyncSession,
    email: str,
    *,
    superuser: bool = False,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
) -> None:
    """Make the user with `email` a superuser, add existing `roles` to theirs, and give them
    `permissions` through a role of their own (`own_role`). Each use case commits."""
    context = operator_context(session)
    users = UserAdminService(session, context)
    user = await find_user(session, email)
    held = [role.name for role in user.roles]
    added = [name for name in roles if name not in held]
    codenames = list(permissions)
    if codenames:
        own = await RoleAdminService(session, context).create_role(
            OPERATOR, name=own_role(user.id), description=None, permissions=codenames, caller=CALLER
        )
        added.append(own.name)
    if added:
        await users.set_roles(OPERATOR, user.id, [*held, *added], caller=CALLER)
    if superuser:
        await users.ensure_superuser(OPERATOR, email=user.email, password=None, caller=CALLER)


async def take_back(session: AsyncSession, email: str) -> None:
    """Delete the role of their own that `grant` gave the user with `email`: they lose its
    permissions at once, while the tokens they hold stay valid (as when an administrator
    deletes a role)."""
    user = await find_user(session, email)
    roles = RoleAdminService(session, operator_context(session))
    await roles.delete_role(OPERATOR, own_role(user.id), caller=CALLER)


async def update_user(session: AsyncSession, email: str, **changes: object) -> User:
    """Change fields or flags of the user with `email` as an administrator does, with the
    consequences (deactivation ends their sessions)."""
    user = await find_user(session, email)
    users = UserAdminService(session, operator_context(session))
    return await users.update_user(OPERATOR, user.id, dict(changes), caller=CALLER)


async def delete_user(session: AsyncSession, email: str) -> None:
    """Delete the user with `email` as an administrator does."""
    user = await find_user(session, email)
    users = UserAdminService(session, operator_context(session))
    await users.delete_user(OPERATOR, user.id, caller=CALLER)


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
    **registration: object,
) -> tuple[str, str]:
    """Register a confidential client through the admin API (`registration`: grant types,
    redirect URIs, ...; by default a service client); its client_id and secret."""
    body = await register_any_client(
        client, headers, name=name, scopes=list(scopes), audiences=list(audiences), **registration
    )
    return str(body["client_id"]), str(body["client_secret"])


async def register_public_client(
    client: httpx.AsyncClient, headers: dict[str, str], **registration: object
) -> str:
    """Register a public client (`token_endpoint_auth_method` `none`, no secret) through the
    admin API; its client_id."""
    body = await register_any_client(
        client, headers, token_endpoint_auth_method="none", **registration
    )
    assert "client_secret" not in body
    return str(body["client_id"])


async def register_any_client(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: object
) -> dict[str, Any]:
    """`POST /admin/clients` with `fields` (a name is made up when none is given); the
    response body."""
    response = await client.post("/admin/clients", json={"name": "app", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit_events(
    sessions: async_sessionmaker[AsyncSession], event_type: str
) -> list[AuditEvent]:
    """Every audit event of `event_type`, oldest first."""
    async with sessions() as session:
        return await AuditEventRepository(session).list_by(type=event_type)
