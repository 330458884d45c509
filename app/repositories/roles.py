"""Data access for roles and permissions."""

from __future__ import annotations

from collections.abc import Iterable

from app.models import Permission, Role
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
