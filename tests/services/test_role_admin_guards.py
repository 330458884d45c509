"""The role and permission service checks its actor itself, not only the HTTP route: a caller
that skips the route's guard (a new route, the command line, a job) still cannot read or
change roles without the permission, and a refused change writes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AuditEvent, Permission, Role
from app.runtime import runtime_of
from app.services.admin.roles import RoleAdminService
from app.services.common.authorization import Actor, BuiltinPermission, MissingPermission
from app.services.common.caller import Caller
from app.services.common.context import ServiceContext

CALLER = Caller(ip="203.0.113.9")
READER = Actor(id=None, is_superuser=False, permissions=frozenset({"roles:read"}))
NOBODY = Actor(id=None, is_superuser=False, permissions=frozenset({"users:read"}))

Call = Callable[[RoleAdminService, Actor], Awaitable[Any]]

READS: dict[str, Call] = {
    "list roles": lambda service, actor: service.list_roles(actor, limit=10),
    "get role": lambda service, actor: service.get_role(actor, "admin"),
    "list permissions": lambda service, actor: service.list_permissions(actor, limit=10),
    "get permission": lambda service, actor: service.get_permission(actor, "users:read"),
}
WRITES: dict[str, Call] = {
    "create role": lambda service, actor: service.create_role(
        actor, name="auditors", description=None, permissions=[], caller=CALLER
    ),
    "update role": lambda service, actor: service.update_role(
        actor, "admin", {"description": "changed"}, caller=CALLER
    ),
    "delete role": lambda service, actor: service.delete_role(actor, "admin", caller=CALLER),
    "replace permissions": lambda service, actor: service.replace_role_permissions(
        actor, "admin", [], caller=CALLER
    ),
    "create permission": lambda service, actor: service.create_permission(
        actor, codename="reports:read", description=None, caller=CALLER
    ),
    "update permission": lambda service, actor: service.update_permission(
        actor, "users:read", {"description": "changed"}, caller=CALLER
    ),
    "delete permission": lambda service, actor: service.delete_permission(
        actor, "users:read", caller=CALLER
    ),
}


def context_of(app: FastAPI) -> ServiceContext:
    runtime = runtime_of(app)
    return ServiceContext(
        settings=runtime.settings,
        hasher=runtime.password_hasher,
        limiter=runtime.rate_limiter,
        outbox=_NoMail(),
        deferred=_NoDeferredWork(),
        audit_hmac=runtime.audit_hmac,
    )


class _NoDeferredWork:
    def run_later(self, job: object) -> None:
        raise AssertionError("role administration defers no work")


class _NoMail:
    async def enqueue(self, session: object, email: object) -> None:
        raise AssertionError("role administration sends no mail")

    async def enqueue_alone(self, email: object) -> None:
        raise AssertionError("role administration sends no mail")


async def snapshot(session: AsyncSession) -> tuple[int, int, int, list[str | None]]:
    roles = await session.scalar(select(func.count()).select_from(Role))
    permissions = await session.scalar(select(func.count()).select_from(Permission))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    descriptions = list(await session.scalars(select(Role.description).order_by(Role.name)))
    return int(roles or 0), int(permissions or 0), int(events or 0), descriptions


@pytest.mark.parametrize("name", READS)
async def test_reads_need_roles_read(
    app: FastAPI, sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    async with sessions() as session:
        service = RoleAdminService(session, context_of(app))
        with pytest.raises(MissingPermission, match=BuiltinPermission.roles_read):
            await READS[name](service, NOBODY)
        assert await READS[name](service, READER) is not None


@pytest.mark.parametrize("name", WRITES)
async def test_changes_need_roles_write_and_a_refusal_writes_nothing(
    app: FastAPI, sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    async with sessions() as session:
        before = await snapshot(session)
    async with sessions() as session:
        service = RoleAdminService(session, context_of(app))
        with pytest.raises(MissingPermission, match=BuiltinPermission.roles_write):
            await WRITES[name](service, READER)
    async with sessions() as session:
        assert await snapshot(session) == before
