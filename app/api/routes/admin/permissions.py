"""Administration of permissions: the codenames roles grant and admin routes require."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import CallerDep, RoleAdminServiceDep
from app.api.permissions import RolesReader, RolesWriter
from app.api.problem_docs import problem_responses
from app.schemas.admin.roles import PermissionCreate, PermissionRead, PermissionUpdate
from app.schemas.pagination import DEFAULT_LIMIT, Cursor, Limit, PageOut

router = APIRouter(
    prefix="/admin", tags=["admin"], responses=problem_responses(400, 401, 403, 404, 409, 422, 503)
)


@router.get("/permissions", response_model=PageOut[PermissionRead])
async def list_permissions(
    actor: RolesReader,
    service: RoleAdminServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageOut[PermissionRead]:
    """Permissions in creation order, the built-in ones first."""
    page = await service.list_permissions(actor, limit=limit, cursor=cursor)
    return PageOut[PermissionRead](
        items=[PermissionRead.model_validate(permission) for permission in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/permissions", response_model=PermissionRead, status_code=status.HTTP_201_CREATED)
async def create_permission(
    body: PermissionCreate,
    actor: RolesWriter,
    service: RoleAdminServiceDep,
    caller: CallerDep,
) -> PermissionRead:
    permission = await service.create_permission(
        actor, codename=body.codename, description=body.description, caller=caller
    )
    return PermissionRead.model_validate(permission)


@router.get("/permissions/{codename}", response_model=PermissionRead)
async def read_permission(
    codename: str, actor: RolesReader, service: RoleAdminServiceDep
) -> PermissionRead:
    return PermissionRead.model_validate(await service.get_permission(actor, codename))


@router.patch("/permissions/{codename}", response_model=PermissionRead)
async def update_permission(
    codename: str,
    body: PermissionUpdate,
    actor: RolesWriter,
    service: RoleAdminServiceDep,
    caller: CallerDep,
) -> PermissionRead:
    """Change the description; codenames cannot be renamed (code and tokens refer to them)."""
    changes = body.model_dump(exclude_unset=True)
    permission = await service.update_permission(actor, codename, changes, caller=caller)
    return PermissionRead.model_validate(permission)


@router.delete("/permissions/{codename}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_permission(
    codename: str, actor: RolesWriter, service: RoleAdminServiceDep, caller: CallerDep
) -> None:
    """Delete a permission; roles holding it lose it at once. Built-ins cannot be deleted."""
    await service.delete_permission(actor, codename, caller=caller)
