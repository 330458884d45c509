"""Administration of roles and permissions.

Rules on top of plain CRUD:
- nobody grants more than they hold: adding to a role a permission the actor lacks needs a
  superuser (removing is always allowed: it only takes power away);
- the built-in `admin` role keeps its name and the built-in permissions, and the built-in
  permissions themselves cannot be deleted: the service's own routes are guarded by them;
- every change lands in the audit trail, naming the admin who made it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound, Unprocessable
from app.models import Permission, Role
from app.repositories import PermissionRepository, RoleRepository
from app.repositories.common.base import Page, UniqueViolation
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.authorization import (
    ADMIN_ROLE,
    BUILTIN_PERMISSIONS,
    Actor,
    BuiltinPermission,
    require,
    require_grantable,
)
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work


class RoleNotFound(NotFound):
    default_detail = "No such role."


class PermissionNotFound(NotFound):
    default_detail = "No such permission."


class RoleNameTaken(Conflict):
    default_detail = "A role with this name already exists."


class CodenameTaken(Conflict):
    default_detail = "A permission with this codename already exists."


class BuiltinRoleProtected(Conflict):
    default_detail = f"The built-in `{ADMIN_ROLE}` role cannot be renamed or deleted."


class BuiltinPermissionsRequired(Conflict):
    def __init__(self, codenames: Collection[str]) -> None:
        super().__init__(
            f"The built-in `{ADMIN_ROLE}` role keeps the built-in permissions; "
            f"cannot remove {_listing(codenames)}."
        )


class BuiltinPermissionProtected(Conflict):
    default_detail = "Built-in permissions cannot be deleted."


class UnknownPermissions(Unprocessable):
    def __init__(self, codenames: Collection[str]) -> None:
        super().__init__(f"Unknown permissions: {_listing(codenames)}.")


def _listing(codenames: Iterable[str]) -> str:
    return ", ".join(sorted(codenames))


def _codenames(permissions: Iterable[Permission]) -> list[str]:
    return sorted(permission.codename for permission in permissions)


class RoleAdminService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.roles = RoleRepository(session)
        self.permissions = PermissionRepository(session)
        self.audit = AuditTrail(session)

    # --- roles -----------------------------------------------------------------------------

    async def list_roles(
        self, actor: Actor, *, limit: int, cursor: str | None = None
    ) -> Page[Role]:
        """A page of roles in creation order, with their permissions."""
        require(actor, [BuiltinPermission.roles_read])
        return await self.roles.page_with_permissions(limit=limit, cursor=cursor)

    async def get_role(self, actor: Actor, name: str) -> Role:
        """The role named `name`, with its permissions."""
        require(actor, [BuiltinPermission.roles_read])
        role = await self.roles.get_by_name_with_permissions(name)
        if role is None:
            raise RoleNotFound
        return role

    async def create_role(
        self,
        actor: Actor,
        *,
        name: str,
        description: str | None,
        permissions: Collection[str],
        caller: Caller,
    ) -> Role:
        """Create a role holding `permissions` (all of which the actor must hold)."""
        require(actor, [BuiltinPermission.roles_write])
        try:
            async with unit_of_work(self.session):
                granted = await self._existing_permissions(permissions)
                require_grantable(actor, permissions)
                role = await self.roles.create(
                    name=name, description=description, permissions=granted
                )
                await self.audit.record_admin(
                    AuditEventType.role_created,
                    actor,
                    caller=caller,
                    role=role.name,
                    permissions=_codenames(granted),
                )
        except UniqueViolation:
            raise RoleNameTaken from None
        return role

    async def update_role(
        self,
        actor: Actor,
        name: str,
        changes: Mapping[str, str | None],
        *,
        caller: Caller,
    ) -> Role:
        """Rename the role (`name`) and/or set its `description`; absent keys stay as they are.
        The `admin` role keeps its name."""
        require(actor, [BuiltinPermission.roles_write])
        try:
            async with unit_of_work(self.session):
                role = await self._lock_role(name)
                values = {
                    field: value
                    for field, value in changes.items()
                    if field in ("name", "description") and getattr(role, field) != value
                }
                if "name" in values and role.name == ADMIN_ROLE:
                    raise BuiltinRoleProtected
                if values:
                    previous_name = role.name
                    role = await self.roles.update(role, **values)
                    await self.audit.record_admin(
                        AuditEventType.role_updated,
                        actor,
                        caller=caller,
                        role=role.name,
                        previous_name=previous_name,
                        fields=sorted(values),
                    )
        except UniqueViolation:
            raise RoleNameTaken from None
        return role

    async def delete_role(self, actor: Actor, name: str, *, caller: Caller) -> None:
        """Delete the role; its holders lose it (and its permissions) at once."""
        require(actor, [BuiltinPermission.roles_write])
        async with unit_of_work(self.session):
            role = await self._lock_role(name)
            if role.name == ADMIN_ROLE:
                raise BuiltinRoleProtected
            holders = await self.roles.count_holders(role.id)
            permissions = _codenames(role.permissions)
            # The user_roles and role_permissions rows go with it (ON DELETE CASCADE).
            await self.roles.delete(role.id)
            await self.audit.record_admin(
                AuditEventType.role_deleted,
                actor,
                caller=caller,
                role=role.name,
                permissions=permissions,
                holders=holders,
            )

    async def replace_role_permissions(
        self,
        actor: Actor,
        name: str,
        codenames: Collection[str],
        *,
        caller: Caller,
    ) -> Role:
        """Make `codenames` the role's complete set of permissions.

        Adding needs the actor to hold what is added (or be a superuser); removing is always
        allowed, except the built-in permissions from the `admin` role.
        """
        require(actor, [BuiltinPermission.roles_write])
        async with unit_of_work(self.session):
            # Locked first, so two concurrent replacements apply one after the other instead
            # of both diffing against the same starting set.
            role = await self._lock_role(name)
            current = set(_codenames(role.permissions))
            wanted = set(codenames)
            added, removed = wanted - current, current - wanted
            if not added and not removed:
                return role
            permissions = await self._existing_permissions(wanted)
            require_grantable(actor, added)
            if role.name == ADMIN_ROLE and removed & BUILTIN_PERMISSIONS:
                raise BuiltinPermissionsRequired(removed & BUILTIN_PERMISSIONS)
            role = await self.roles.update(role, permissions=permissions)
            await self.audit.record_admin(
                AuditEventType.role_permissions_changed,
                actor,
                caller=caller,
                role=role.name,
                added=sorted(added),
                removed=sorted(removed),
            )
        return role

    async def _lock_role(self, name: str) -> Role:
        role = await self.roles.get_by_name_with_permissions(name, for_update=True)
        if role is None:
            raise RoleNotFound
        return role

    async def _existing_permissions(self, codenames: Collection[str]) -> list[Permission]:
        """The permissions named, share-locked so none is deleted before the commit; 422
        naming any that do not exist."""
        if not codenames:
            return []
        found = await self.permissions.list_by_codenames_for_share(codenames)
        unknown = set(codenames) - {permission.codename for permission in found}
        if unknown:
            raise UnknownPermissions(unknown)
        return found

    # --- permissions -----------------------------------------------------------------------

    async def list_permissions(
        self, actor: Actor, *, limit: int, cursor: str | None = None
    ) -> Page[Permission]:
        """A page of permissions in creation order (the built-in ones first)."""
        require(actor, [BuiltinPermission.roles_read])
        return await self.permissions.list_page(limit=limit, cursor=cursor)

    async def get_permission(self, actor: Actor, codename: str) -> Permission:
        """The permission with `codename`."""
        require(actor, [BuiltinPermission.roles_read])
        permission = await self.permissions.get_by_codename(codename)
        if permission is None:
            raise PermissionNotFound
        return permission

    async def create_permission(
        self, actor: Actor, *, codename: str, description: str | None, caller: Caller
    ) -> Permission:
        """Define a new permission; no role holds it yet."""
        require(actor, [BuiltinPermission.roles_write])
        try:
            async with unit_of_work(self.session):
                permission = await self.permissions.create(
                    codename=codename, description=description
                )
                await self.audit.record_admin(
                    AuditEventType.permission_created, actor, caller=caller, codename=codename
                )
        except UniqueViolation:
            raise CodenameTaken from None
        return permission

    async def update_permission(
        self,
        actor: Actor,
        codename: str,
        changes: Mapping[str, str | None],
        *,
        caller: Caller,
    ) -> Permission:
        """Set the permission's `description` (the only changeable field)."""
        require(actor, [BuiltinPermission.roles_write])
        async with unit_of_work(self.session):
            permission = await self._lock_permission(codename)
            if "description" in changes and changes["description"] != permission.description:
                permission = await self.permissions.update(
                    permission, description=changes["description"]
                )
                await self.audit.record_admin(
                    AuditEventType.permission_updated,
                    actor,
                    caller=caller,
                    codename=codename,
                    fields=["description"],
                )
        return permission

    async def delete_permission(self, actor: Actor, codename: str, *, caller: Caller) -> None:
        """Delete a permission; every role holding it loses it at once. Built-ins stay."""
        require(actor, [BuiltinPermission.roles_write])
        if codename in BUILTIN_PERMISSIONS:
            raise BuiltinPermissionProtected
        async with unit_of_work(self.session):
            permission = await self._lock_permission(codename)
            roles = await self.permissions.count_roles_with(permission.id)
            await self.permissions.delete(permission.id)
            await self.audit.record_admin(
                AuditEventType.permission_deleted,
                actor,
                caller=caller,
                codename=codename,
                roles=roles,
            )

    async def _lock_permission(self, codename: str) -> Permission:
        permission = await self.permissions.get_by_codename_for_update(codename)
        if permission is None:
            raise PermissionNotFound
        return permission
