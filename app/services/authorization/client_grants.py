"""What each user agreed to share with each third-party client: consent is asked once per
client and scope set, and remembered until the user revokes it. A building block; it never
commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ClientGrant
from app.repositories import ClientGrantRepository


class ClientGrants:
    def __init__(self, session: AsyncSession) -> None:
        self.grants = ClientGrantRepository(session)

    async def covers(self, user_id: uuid.UUID, client_id: str, scopes: Iterable[str]) -> bool:
        """Whether the user already granted the client every one of `scopes`."""
        grant = await self.grants.get_for(user_id, client_id)
        return grant is not None and set(scopes) <= set(grant.scope.split())

    async def remember(
        self, user_id: uuid.UUID, client_id: str, scopes: Iterable[str], now: datetime
    ) -> ClientGrant:
        """Add `scopes` to what the user granted the client (a grant only widens here; the
        user narrows it by revoking)."""
        grant = await self.grants.get_for(user_id, client_id)
        if grant is None:
            return await self.grants.create(
                user_id=user_id,
                client_id=client_id,
                scope=" ".join(sorted(set(scopes))),
                created_at=now,
                updated_at=now,
            )
        grant.scope = " ".join(sorted(set(grant.scope.split()) | set(scopes)))
        grant.updated_at = now
        return grant

    async def list_for_user(self, user_id: uuid.UUID) -> list[ClientGrant]:
        return await self.grants.list_for_user(user_id)

    async def forget(self, user_id: uuid.UUID, client_id: str) -> bool:
        return await self.grants.delete_for(user_id, client_id)
