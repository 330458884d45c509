"""Test state the public API cannot set yet (admin changes, imported hashes) and a clock
the tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from app.repositories import UserRepository


class FrozenClock:
    """A clock the test moves by hand; installed on the app by the `clock` fixture."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def change_user(session: AsyncSession, email: str, **values: Any) -> User:
    """Set columns of the user with `email` and commit, as an administrator would."""
    users = UserRepository(session)
    user = await users.get_by_email(email)
    assert user is not None, email
    user = await users.update(user, **values)
    await session.commit()
    return user


async def delete_user(session: AsyncSession, email: str) -> None:
    users = UserRepository(session)
    user = await users.get_by_email(email)
    assert user is not None, email
    await users.delete(user.id)
    await session.commit()
