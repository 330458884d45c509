"""Data access for users."""

from __future__ import annotations

from app.models import User
from app.repositories.base import BaseRepository


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserRepository(BaseRepository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """Case-insensitive: emails are stored lower-cased."""
        return await self.get_one_by(email=normalize_email(email))

    async def get_by_username(self, username: str) -> User | None:
        return await self.get_one_by(username=username.strip().lower())

    async def get_by_identifier(self, identifier: str) -> User | None:
        """The sign-in name: an email address if it holds an '@', else a username."""
        if "@" in identifier:
            return await self.get_by_email(identifier)
        return await self.get_by_username(identifier)
