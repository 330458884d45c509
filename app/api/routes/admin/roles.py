"""Administration of roles: CRUD and the set of permissions each role grants."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import CallerDep, RoleAdminServiceDep
from app.api.permissions import RolesReader, RolesWriter
from app.api.problem_docs import problem_responses
from app.schemas.admin.roles import RoleCreate, RolePermissionsUpdate, RoleRead, RoleUpdate
from app.schemas.pagination import DEFAULT_LIMIT, Cursor, Limit, PageOut

router = APIRouter(
    prefix="/admin", tags=["admin"], responses=problem_responses(400, 401, 403, 404, 409, 422, 503)
)


@router.get("/roles", response_model=PageOut[RoleRead])
async def list_roles(
    actor: RolesReader,
    service: RoleAdminServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageOut[RoleRead]:
    """Roles in creation order, each with its permissions."""
    page = await service.list_roles(actor, limit=limit, cursor=cursor)
    return PageOut[RoleRead](
        items=[RoleRead.model_validate(role) for role in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/roles", response_model=RoleRead, status_code=status.HTTP_201_CREATED)
async def create_role(
    body: RoleCreate, actor: RolesWriter, service: RoleAdminServiceDep, caller: CallerDep
) -> RoleRead:
    """Create a role. Only a superuser grants permissions they do not hold themselves."""
    role = await service.create_role(
        actor,
        name=body.name,
        description=body.description,
        permissions=body.permissions,
        caller=caller,
    )
    return RoleRead.model_validate(role)


@router.get("/roles/{name}", response_model=RoleRead)
async def read_role(name: str, actor: RolesReader, service: RoleAdminServiceDep) -> RoleRead:
    return RoleRead.model_validate(await service.get_role(actor, name))


@router.patch("/roles/{name}", response_model=RoleRead)
async def update_role(
    name: str,
    body: RoleUpdate,
    actor: RolesWriter,
    service: RoleAdminServiceDep,
    caller: CallerDep,
) -> RoleRead:
    """Rename a role or change its description; the `admin` role keeps its name."""
    changes = body.model_dump(exclude_unset=True)
    role = await service.update_role(actor, name, changes, caller=caller)
    return RoleRead.model_validate(role)


@router.delete("/roles/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(
    name: str, actor: RolesWriter, service: RoleAdminServiceDep, caller: CallerDep
) -> None:
    """Delete a role; its holders lose its permissions at once. `admin` cannot be deleted."""
    await service.delete_role(actor, name, caller=caller)


@router.put("/roles/{name}/permissions", response_model=RoleRead)
async def replace_role_permissions(
    name: str,
    body: RolePermissionsUpdate,
    actor: RolesWriter,
    service: RoleAdminServiceDep,
    caller: CallerDep,
) -> RoleRead:
    """Replace the role's permissions with `permissions`. Adding needs the actor to hold
    what is added (or be a superuser); removing takes effect on the holders' next request."""
    role = await service.replace_role_permissions(actor, name, body.permissions, caller=caller)
    return RoleRead.model_validate(role)
