"""Data access for authorization codes (kept as digests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.models import AuthorizationCode
from app.repositories.common.base import BaseRepository


class AuthorizationCodeRepository(BaseRepository[AuthorizationCode]):
    model = AuthorizationCode

    async def get_for_update_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        """The code, its row locked until the transaction ends: of parallel redemptions, the
        first redeems it and the others find it redeemed."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(AuthorizationCode)
            .where(AuthorizationCode.code_hash == code_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()

    async def delete_expired(self, before: datetime) -> int:
        """Forget codes that expired before `before` (kept a while after expiry, so a replay
        soon after is still recognised as one)."""
        statement = delete(AuthorizationCode).where(AuthorizationCode.expires_at <= before)
        return len(await self._returning_ids(statement))
