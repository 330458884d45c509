"""Data access for users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, literal, or_, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.identifiers import normalize_email, normalize_username
from app.models import Role, User, user_roles
from app.models.base import UTCDateTime
from app.repositories.common.base import BaseRepository, Page


@dataclass(frozen=True, slots=True)
class UserSearch:
    """What an administrator filters users by; None leaves a filter out."""

    query: str | None = None  # a case-insensitive part of the email, username or full name
    is_active: bool | None = None
    is_verified: bool | None = None
    mfa_enabled: bool | None = None
    role: str | None = None  # holders of this role


class UserRepository(BaseRepository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """Case-insensitive: emails are stored lower-cased."""
        return await self._one_with_roles(User.email == normalize_email(email))

    async def get_by_username(self, username: str) -> User | None:
        return await self._one_with_roles(User.username == normalize_username(username))

    async def get_by_identifier(self, identifier: str) -> User | None:
        """The sign-in name: an email address if it holds an '@', else a username."""
        if "@" in identifier:
            return await self.get_by_email(identifier)
        return await self.get_by_username(identifier)

    async def _one_with_roles(self, condition: ColumnElement[bool]) -> User | None:
        # Sign-in needs the roles for the token: one joined query instead of two round trips.
        statement = select(User).where(condition).options(joinedload(User.roles))
        return (await self.session.execute(statement)).unique().scalars().first()

    async def record_sign_in(
        self, user: User, *, verified_hash: str | None, now: datetime, new_hash: str | None
    ) -> bool:
        """Stamp the sign-in (and store `new_hash`, an upgraded hash) only if the account is
        still active with the password hash that was verified; lock its row until the
        transaction ends. False if a password change, deactivation or deletion won the race.
        For an account with a second factor the password is only the first step: its
        `last_login_at` waits for the second.

        One conditional UPDATE: the check, the lock and the write in a single round trip. The
        token version and `mfa_enabled` are read back, so a concurrent logout-all is not undone
        by stale data and a second factor confirmed meanwhile is asked for.
        """
        statement = (
            update(User)
            .where(
                User.id == user.id,
                User.hashed_password == verified_hash,
                User.is_active.is_(True),
            )
            .values(
                last_login_at=case(
                    (User.mfa_enabled.is_(True), User.last_login_at),
                    else_=literal(now, UTCDateTime()),
                ),
                hashed_password=new_hash or verified_hash,
            )
            .returning(User.token_version, User.mfa_enabled, User.last_login_at)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(statement)).one_or_none()
        if row is None:
            return False
        for name, value in (
            ("token_version", row.token_version),
            ("mfa_enabled", row.mfa_enabled),
            ("last_login_at", row.last_login_at),
            ("hashed_password", new_hash or verified_hash),
        ):
            set_committed_value(user, name, value)
        return True

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
        self, filters: UserSearch, *, limit: int, cursor: str | None = None
    ) -> Page[User]:
        """A page of users matching every filter set in `filters`."""
        where: list[ColumnElement[bool]] = []
        if filters.query:
            needle = filters.query.strip().lower()
            where.append(
                or_(
                    User.email.contains(needle, autoescape=True),
                    User.username.contains(needle, autoescape=True),
                    func.lower(User.full_name).contains(needle, autoescape=True),
                )
            )
        for column, wanted in (
            (User.is_active, filters.is_active),
            (User.is_verified, filters.is_verified),
            (User.mfa_enabled, filters.mfa_enabled),
        ):
            if wanted is not None:
                where.append(column.is_(wanted))
        if filters.role is not None:
            holders = (
                select(user_roles.c.user_id)
                .join(Role, Role.id == user_roles.c.role_id)
                .where(Role.name == filters.role)
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
