"""Data access for sign-in sessions and their refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult

from app.models import RefreshToken, UserSession
from app.repositories.common.base import BaseRepository


class SignInSessionRepository(BaseRepository[UserSession]):
    model = UserSession

    async def list_active_for_user(self, user_id: uuid.UUID, now: datetime) -> list[UserSession]:
        return await self.list_by(
            UserSession.revoked_at.is_(None), UserSession.expires_at > now, user_id=user_id
        )

    async def revoke(self, session_id: uuid.UUID, now: datetime, reason: str) -> bool:
        """Revoke one session if it is still live; True when it was."""
        statement = (
            update(UserSession)
            .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )
        result: CursorResult[tuple[()]] = await self.session.execute(statement)  # type: ignore[assignment]
        return result.rowcount == 1

    async def revoke_all_for_user(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        keep: uuid.UUID | None = None,
    ) -> int:
        """Revoke every live session of a user (but `keep`) in one statement."""
        return await self.revoke_all_for_users([user_id], now, reason, keep=keep)

    async def revoke_all_for_users(
        self,
        user_ids: Iterable[uuid.UUID],
        now: datetime,
        reason: str,
        *,
        keep: uuid.UUID | None = None,
    ) -> int:
        """Revoke every live session of the users (but `keep`) in one statement."""
        ids = list(user_ids)
        if not ids:
            return 0
        statement = update(UserSession).where(
            UserSession.user_id.in_(ids), UserSession.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(UserSession.id != keep)
        result: CursorResult[tuple[()]] = await self.session.execute(  # type: ignore[assignment]
            statement.values(revoked_at=now, revoke_reason=reason)
        )
        return int(result.rowcount)

    async def get_by_browser_secret(self, secret_hash: str) -> UserSession | None:
        """The browser session whose cookie secret has this digest."""
        return await self.get_one_by(browser_secret_hash=secret_hash)

    async def revoke_with_derived(self, session_id: uuid.UUID, now: datetime, reason: str) -> int:
        """Revoke a browser session and every live session opened from it (by its codes), in
        one statement; how many were live."""
        statement = update(UserSession).where(
            (UserSession.id == session_id) | (UserSession.browser_session_id == session_id),
            UserSession.revoked_at.is_(None),
        )
        result: CursorResult[tuple[()]] = await self.session.execute(  # type: ignore[assignment]
            statement.values(revoked_at=now, revoke_reason=reason)
        )
        return int(result.rowcount)

    async def revoke_for_client(
        self, user_id: uuid.UUID, client_id: str, now: datetime, reason: str
    ) -> int:
        """Revoke every live session a user has with one client; how many were live."""
        statement = update(UserSession).where(
            UserSession.user_id == user_id,
            UserSession.client_id == client_id,
            UserSession.revoked_at.is_(None),
        )
        result: CursorResult[tuple[()]] = await self.session.execute(  # type: ignore[assignment]
            statement.values(revoked_at=now, revoke_reason=reason)
        )
        return int(result.rowcount)

    async def get_for_update_by_refresh_token(self, token_hash: str) -> UserSession | None:
        """The session a refresh token belongs to, its row locked until the transaction ends.

        Locked before the token itself: deleting a user locks sessions and then their tokens
        (ON DELETE CASCADE), so a refresh taking them in the other order could deadlock.
        """
        await self._serialize_writers_on_sqlite()
        statement = (
            select(UserSession)
            .join(RefreshToken, RefreshToken.session_id == UserSession.id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update(of=UserSession)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()


class RefreshTokenRepository(BaseRepository[RefreshToken]):
    model = RefreshToken

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.get_one_by(token_hash=token_hash)

    async def spend(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        """Mark an unspent token spent; return its session id, or None if it was not unspent.

        One conditional UPDATE: of two concurrent uses, the database lets exactly one match.
        """
        statement = (
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.spent_at.is_(None))
            .values(spent_at=now)
            .returning(RefreshToken.session_id)
        )
        result = await self.session.execute(statement)
        return result.scalar_one_or_none()
