"""A clock the tests move by hand, and rows forged for states no use case leaves behind."""

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


async def forge_user(session: AsyncSession, email: str, **columns: Any) -> User:
    """Write columns of the user with `email` straight into the row and commit.

    Only for states no use case leaves behind (an imported hash, a token version moved on its
    own, an inactive account whose sessions live on); each caller says which. Changes an
    administrator can make go through `tests.support.admins` instead.
    """
    users = UserRepository(session)
    user = await users.get_by_email(email)
    assert user is not None, email
    user = await users.update(user, **columns)
    await session.commit()
    return user
