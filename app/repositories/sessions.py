"""Data access for sign-in sessions and their refresh tokens."""

from __future__ import annotations

import uuid

from app.models import RefreshToken, UserSession
from app.repositories.base import BaseRepository


class SessionRepository(BaseRepository[UserSession]):
    model = UserSession

    async def list_active_for_user(self, user_id: uuid.UUID) -> list[UserSession]:
        return await self.list_by(UserSession.revoked_at.is_(None), user_id=user_id)


class RefreshTokenRepository(BaseRepository[RefreshToken]):
    model = RefreshToken

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.get_one_by(token_hash=token_hash)
