"""User administration: accounts, their roles and sessions, in bulk or one by one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import CallerDep, UserAdminDep
from app.api.permissions import UsersReader, UsersWriter
from app.api.problem_docs import problem_responses
from app.schemas.admin.users import (
    AdminUserCreate,
    AdminUserRead,
    AdminUserUpdate,
    BulkRequest,
    BulkResult,
    RoleAssignment,
)
from app.schemas.pagination import DEFAULT_LIMIT, Cursor, Limit, PageOut
from app.services.admin.users import NewUser, UserSearch

router = APIRouter(
    prefix="/admin/users",
    tags=["admin"],
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)


@router.get("", response_model=PageOut[AdminUserRead])
async def list_users(
    actor: UsersReader,
    service: UserAdminDep,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Part of the email, username or full name."),
    ] = None,
    is_active: bool | None = None,
    is_verified: bool | None = None,
    role: Annotated[str | None, Query(max_length=100, description="Holders of this role.")] = None,
    mfa: Annotated[
        bool | None, Query(description="With (true) or without two-step sign-in.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageOut[AdminUserRead]:
    """Users in creation order. Keyset pagination: pages stay correct while users sign up."""
    filters = UserSearch(
        query=q, is_active=is_active, is_verified=is_verified, mfa_enabled=mfa, role=role
    )
    page = await service.list_users(actor, filters, limit=limit, cursor=cursor)
    return PageOut(
        items=[AdminUserRead.model_validate(user) for user in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("", response_model=AdminUserRead, status_code=status.HTTP_201_CREATED)
async def create_user(
    body: AdminUserCreate, actor: UsersWriter, service: UserAdminDep, caller: CallerDep
) -> AdminUserRead:
    """Create an account with chosen flags and roles (superusers only by superusers)."""
    user = await service.create_user(actor, NewUser(**body.model_dump()), caller=caller)
    return AdminUserRead.model_validate(user)


@router.post("/bulk", response_model=BulkResult)
async def bulk_action(
    body: BulkRequest, actor: UsersWriter, service: UserAdminDep, caller: CallerDep
) -> BulkResult:
    """Activate, deactivate or delete many users in one statement. `affected` counts the
    users that changed; deactivation ends their sessions and retires their tokens."""
    affected = await service.bulk(actor, set(body.ids), body.action, caller=caller)
    return BulkResult(affected=affected)


@router.get("/{user_id}", response_model=AdminUserRead)
async def read_user(user_id: uuid.UUID, actor: UsersReader, service: UserAdminDep) -> AdminUserRead:
    return AdminUserRead.model_validate(await service.get_user(actor, user_id))


@router.patch("/{user_id}", response_model=AdminUserRead)
async def update_user(
    user_id: uuid.UUID,
    body: AdminUserUpdate,
    actor: UsersWriter,
    service: UserAdminDep,
    caller: CallerDep,
) -> AdminUserRead:
    """Change profile fields, `is_active`, `is_verified`, `is_superuser` or the password."""
    user = await service.update_user(actor, user_id, body.changes(), caller=caller)
    return AdminUserRead.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user_id: uuid.UUID, actor: UsersWriter, service: UserAdminDep, caller: CallerDep
) -> None:
    await service.delete_user(actor, user_id, caller=caller)


@router.put("/{user_id}/roles", response_model=AdminUserRead)
async def set_roles(
    user_id: uuid.UUID,
    body: RoleAssignment,
    actor: UsersWriter,
    service: UserAdminDep,
    caller: CallerDep,
) -> AdminUserRead:
    """Replace the user's roles. Only permissions the caller holds can be handed out."""
    user = await service.set_roles(actor, user_id, body.roles, caller=caller)
    return AdminUserRead.model_validate(user)


@router.delete("/{user_id}/sessions", status_code=status.HTTP_204_NO_CONTENT)
async def end_sessions(
    user_id: uuid.UUID, actor: UsersWriter, service: UserAdminDep, caller: CallerDep
) -> None:
    """End every session of the user; their access tokens stop working at once."""
    await service.end_sessions(actor, user_id, caller=caller)


@router.delete("/{user_id}/mfa", status_code=status.HTTP_204_NO_CONTENT)
async def reset_mfa(
    user_id: uuid.UUID, actor: UsersWriter, service: UserAdminDep, caller: CallerDep
) -> None:
    """Turn the user's two-step sign-in off (authenticator and recovery codes), for a user who
    lost both; audited, and the owner is mailed (when it was on). A pending enrolment is
    dropped too. 404 when the user has neither."""
    await service.reset_mfa(actor, user_id, caller=caller)
