"""Data access for revoked access tokens (the denylist of client-credentials tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from app.models import RevokedAccessToken
from app.models.base import new_id
from app.repositories.common.base import BaseRepository

# Expired rows removed per revocation: enough to keep up with any revocation rate, small
# enough that a revocation never turns into a long purge.
PURGE_BATCH = 500


class RevokedAccessTokenRepository(BaseRepository[RevokedAccessToken]):
    model = RevokedAccessToken

    async def add_once(
        self, jti: str, *, client_id: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Deny the token with `jti` until `expires_at`; True if this call added it, False if
        it was already denied. Concurrent calls for one token add one row and never fail."""
        insert = postgresql.insert if self._dialect_name() == "postgresql" else sqlite.insert
        statement = (
            insert(RevokedAccessToken)
            .values(
                id=new_id(), jti=jti, client_id=client_id, expires_at=expires_at, created_at=now
            )
            .on_conflict_do_nothing(index_elements=[RevokedAccessToken.jti])
            .returning(RevokedAccessToken.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def purge_expired(self, now: datetime) -> None:
        """Remove rows of tokens that have expired anyway, a batch at a time. Rows another
        transaction is purging are skipped, not waited for (PostgreSQL), so concurrent
        revocations never queue or deadlock on each other's purges."""
        expired = (
            select(RevokedAccessToken.id)
            .where(RevokedAccessToken.expires_at <= now)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
        await self.session.execute(
            delete(RevokedAccessToken).where(RevokedAccessToken.id.in_(expired.scalar_subquery()))
        )

    def _dialect_name(self) -> str:
        return self.session.get_bind().dialect.name
