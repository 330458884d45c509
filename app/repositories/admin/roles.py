"""Data access for roles and permissions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.models import Permission, Role, role_permissions, user_roles
from app.repositories.common.base import BaseRepository, Page


class RoleRepository(BaseRepository[Role]):
    model = Role

    async def get_by_name(self, name: str) -> Role | None:
        return await self.get_one_by(name=name)

    async def list_by_names(self, names: Iterable[str]) -> list[Role]:
        return await self.list_by(Role.name.in_(list(names)))

    async def list_by_names_for_share(self, names: Iterable[str]) -> list[Role]:
        """The roles, share-locked until the transaction ends: a concurrent delete waits,
        instead of removing a role this transaction is about to assign."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(Role)
            .where(Role.name.in_(list(names)))
            .order_by(Role.id)
            .with_for_update(read=True)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def get_by_name_with_permissions(
        self, name: str, *, for_update: bool = False
    ) -> Role | None:
        """The role and its permissions. `for_update` locks the role row (PostgreSQL) until
        the transaction ends, so changes decided on what was read cannot interleave with
        another request's; it also re-reads a role this session already holds."""
        statement = select(Role).where(Role.name == name).options(selectinload(Role.permissions))
        if for_update:
            await self._serialize_writers_on_sqlite()
            statement = statement.with_for_update(of=Role).execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalars().first()

    async def page_with_permissions(self, *, limit: int, cursor: str | None = None) -> Page[Role]:
        """A page of roles in creation order, each with its permissions loaded."""
        page = await self.list_page(limit=limit, cursor=cursor)
        await self.load_permissions(page.items)
        return page

    async def load_permissions(self, roles: Sequence[Role]) -> None:
        """Load the permissions of `roles` in one query (the relationship never lazy-loads)."""
        if not roles:
            return
        # Roles already in the session get their unloaded `permissions` filled in by the
        # eager loader; the role columns themselves are not re-read.
        statement = (
            select(Role)
            .where(Role.id.in_([role.id for role in roles]))
            .options(selectinload(Role.permissions))
        )
        await self.session.execute(statement)

    async def count_holders(self, role_id: uuid.UUID) -> int:
        """How many users hold the role."""
        statement = select(func.count()).select_from(user_roles)
        statement = statement.where(user_roles.c.role_id == role_id)
        return int((await self.session.execute(statement)).scalar_one())


class PermissionRepository(BaseRepository[Permission]):
    model = Permission

    async def get_by_codename(self, codename: str) -> Permission | None:
        return await self.get_one_by(codename=codename)

    async def get_by_codename_for_update(self, codename: str) -> Permission | None:
        """The permission, its row locked (PostgreSQL) until the transaction ends."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(Permission)
            .where(Permission.codename == codename)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()

    async def list_by_codenames(self, codenames: Iterable[str]) -> list[Permission]:
        return await self.list_by(Permission.codename.in_(list(codenames)))

    async def list_by_codenames_for_share(self, codenames: Iterable[str]) -> list[Permission]:
        """The permissions, share-locked (PostgreSQL) until the transaction ends: a concurrent
        delete waits, instead of removing a permission this transaction is about to grant."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(Permission)
            .where(Permission.codename.in_(list(codenames)))
            .order_by(Permission.id)
            .with_for_update(read=True)
        )
        return list((await self.session.execute(statement)).scalars().all())

    async def count_roles_with(self, permission_id: uuid.UUID) -> int:
        """How many roles hold the permission."""
        statement = select(func.count()).select_from(role_permissions)
        statement = statement.where(role_permissions.c.permission_id == permission_id)
        return int((await self.session.execute(statement)).scalar_one())

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

    async def existing_codenames(self, codenames: Iterable[str]) -> set[str]:
        """Those of `codenames` that name a permission that exists."""
        statement = select(Permission.codename).where(Permission.codename.in_(list(codenames)))
        return set((await self.session.execute(statement)).scalars().all())

    async def all_codenames(self) -> set[str]:
        return set((await self.session.execute(select(Permission.codename))).scalars().all())
