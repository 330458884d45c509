"""Data access for users."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import joinedload

from app.models import User
from app.repositories.base import BaseRepository


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
