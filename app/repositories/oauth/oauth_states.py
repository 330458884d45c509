"""Data access for external sign-ins in progress."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, update

from app.models import OAuthState
from app.repositories.common.base import BaseRepository


class OAuthStateRepository(BaseRepository[OAuthState]):
    model = OAuthState

    async def use(self, state_hash: str, now: datetime) -> OAuthState | None:
        """Mark the unexpired, unused state with this digest used, and return it; None if there
        is none. One conditional UPDATE: of two callbacks racing with one state, one wins."""
        statement = (
            update(OAuthState)
            .where(
                OAuthState.state_hash == state_hash,
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > now,
            )
            .values(used_at=now)
            .returning(OAuthState.id)
        )
        used: uuid.UUID | None = (await self.session.execute(statement)).scalar()
        return None if used is None else await self.get_by_id(used)

    async def delete_expired(self, now: datetime) -> None:
        await self.session.execute(delete(OAuthState).where(OAuthState.expires_at <= now))
