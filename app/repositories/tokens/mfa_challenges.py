"""Data access for sign-ins waiting for a second factor (`mfa_token`s, kept as digests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.models import MfaChallenge
from app.repositories.common.base import BaseRepository


class MfaChallengeRepository(BaseRepository[MfaChallenge]):
    model = MfaChallenge

    async def get_by_hash(self, token_hash: str) -> MfaChallenge | None:
        return await self.get_one_by(token_hash=token_hash)

    async def get_for_update_by_hash(self, token_hash: str) -> MfaChallenge | None:
        """The challenge, its row locked until the transaction ends: parallel guesses against
        one `mfa_token` are counted one after the other, so its attempt limit holds."""
        await self._serialize_writers_on_sqlite()
        statement = (
            select(MfaChallenge)
            .where(MfaChallenge.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalars().first()

    async def delete_expired(self, now: datetime) -> int:
        """Forget challenges that can no longer be answered."""
        statement = delete(MfaChallenge).where(MfaChallenge.expires_at <= now)
        return len(await self._returning_ids(statement))
