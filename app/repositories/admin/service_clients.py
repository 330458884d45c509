"""Data access for service clients."""

from __future__ import annotations

from app.models import ServiceClient
from app.repositories.common.base import BaseRepository


class ServiceClientRepository(BaseRepository[ServiceClient]):
    model = ServiceClient

    async def get_by_client_id(self, client_id: str) -> ServiceClient | None:
        return await self.get_one_by(client_id=client_id)
