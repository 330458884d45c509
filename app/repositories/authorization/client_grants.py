"""Data access for what users granted clients."""

from __future__ import annotations

import uuid

from sqlalchemy import delete

from app.models import ClientGrant
from app.repositories.common.base import BaseRepository


class ClientGrantRepository(BaseRepository[ClientGrant]):
    model = ClientGrant

    async def get_for(self, user_id: uuid.UUID, client_id: str) -> ClientGrant | None:
        return await self.get_one_by(user_id=user_id, client_id=client_id)

    async def list_for_user(self, user_id: uuid.UUID) -> list[ClientGrant]:
        return await self.list_by(user_id=user_id)

    async def delete_for(self, user_id: uuid.UUID, client_id: str) -> bool:
        statement = delete(ClientGrant).where(
            ClientGrant.user_id == user_id, ClientGrant.client_id == client_id
        )
        return len(await self._returning_ids(statement)) > 0
