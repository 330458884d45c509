"""Data access for users."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import joinedload

from app.models import Role, User, user_roles
from app.repositories.base import BaseRepository, Page


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserRepository(BaseRepository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """Case-insensitive: emails are stored lower-cased."""
        return await self._one_with_roles(User.email == normalize_email(email))

    async def get_by_username(self, username: str) -> User | None:
        return await self._one_with_roles(User.username == username.strip().lower())

    async def get_by_identifier(self, identifier: str) -> User | None:
        """The sign-in name: an email address if it holds an '@', else a username."""
        if "@" in identifier:
            return await self.get_by_email(identifier)
        return await self.get_by_username(identifier)

    async def _one_with_roles(self, condition: ColumnElement[bool]) -> User | None:
        # Sign-in needs the roles for the token: one joined query instead of two round trips.
        statement = select(User).where(condition).options(joinedload(User.roles))
        return (await self.session.execute(statement)).unique().scalars().first()

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """Load a user and lock the row (PostgreSQL) until the transaction ends, so changes
        decided on what was read cannot interleave with another request's."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(User)
            .where(User.id == user_id)
            .with_for_update(of=User)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()

    async def search(
        self,
        *,
        query: str | None = None,
        is_active: bool | None = None,
        is_verified: bool | None = None,
        role: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[User]:
        """A page of users matching every given filter; `query` is a case-insensitive
        substring of the email, username or full name."""
        where: list[ColumnElement[bool]] = []
        if query:
            needle = query.strip().lower()
            where.append(
                or_(
                    User.email.contains(needle, autoescape=True),
                    User.username.contains(needle, autoescape=True),
                    func.lower(User.full_name).contains(needle, autoescape=True),
                )
            )
        if is_active is not None:
            where.append(User.is_active.is_(is_active))
        if is_verified is not None:
            where.append(User.is_verified.is_(is_verified))
        if role is not None:
            holders = (
                select(user_roles.c.user_id)
                .join(Role, Role.id == user_roles.c.role_id)
                .where(Role.name == role)
            )
            where.append(User.id.in_(holders))
        return await self.list_page(*where, limit=limit, cursor=cursor)

    async def lock_active_superuser_ids(self) -> set[uuid.UUID]:
        """The active superusers, their rows locked until the transaction ends. Locked in id
        order, so two transactions taking this lock never deadlock on each other."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(User.id)
            .where(User.is_superuser.is_(True), User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        return set((await self.session.execute(statement)).scalars().all())
