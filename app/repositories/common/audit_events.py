"""Data access for the audit trail (append and read; never updated)."""

from __future__ import annotations

import uuid

from app.models import AuditEvent
from app.repositories.common.base import BaseRepository, Page


class AuditEventRepository(BaseRepository[AuditEvent]):
    model = AuditEvent

    async def search(
        self,
        *,
        user_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        event_type: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """Newest first; each filter is served by an index on (filter, id)."""
        filters: dict[str, object] = {}
        if user_id is not None:
            filters["user_id"] = user_id
        if actor_id is not None:
            filters["actor_id"] = actor_id
        if event_type is not None:
            filters["type"] = event_type
        return await self.list_page(limit=limit, cursor=cursor, newest_first=True, **filters)
