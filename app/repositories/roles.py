"""Data access for roles and permissions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select

from app.models import Permission, Role, role_permissions, user_roles
from app.repositories.base import BaseRepository


class RoleRepository(BaseRepository[Role]):
    model = Role

    async def get_by_name(self, name: str) -> Role | None:
        return await self.get_one_by(name=name)

    async def list_by_names(self, names: Iterable[str]) -> list[Role]:
        return await self.list_by(Role.name.in_(list(names)))


class PermissionRepository(BaseRepository[Permission]):
    model = Permission

    async def get_by_codename(self, codename: str) -> Permission | None:
        return await self.get_one_by(codename=codename)

    async def list_by_codenames(self, codenames: Iterable[str]) -> list[Permission]:
        return await self.list_by(Permission.codename.in_(list(codenames)))

    async def codenames_for_user(self, user_id: uuid.UUID) -> set[str]:
        """Every permission the user holds through any of their roles."""
        return await self.codenames_for_users([user_id])

    async def codenames_for_users(self, user_ids: Iterable[uuid.UUID]) -> set[str]:
        """Every permission any of the users holds through their roles."""
        statement = (
            select(Permission.codename)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .join(user_roles, user_roles.c.role_id == role_permissions.c.role_id)
            .where(user_roles.c.user_id.in_(list(user_ids)))
            .distinct()
        )
        return set((await self.session.execute(statement)).scalars().all())

    async def codenames_for_roles(self, role_ids: Iterable[uuid.UUID]) -> set[str]:
        """Every permission any of the roles holds."""
        statement = (
            select(Permission.codename)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .where(role_permissions.c.role_id.in_(list(role_ids)))
            .distinct()
        )
        return set((await self.session.execute(statement)).scalars().all())

    async def all_codenames(self) -> set[str]:
        return set((await self.session.execute(select(Permission.codename))).scalars().all())
