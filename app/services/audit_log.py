"""Reading the audit trail."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.repositories import AuditEventRepository, Page
from app.services.authorization import Actor, BuiltinPermission, require
from app.services.context import Service, ServiceContext


class AuditLogService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.events = AuditEventRepository(session)

    async def list_events(
        self,
        actor: Actor,
        *,
        user_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        event_type: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """Events newest first, filtered by the user concerned, the actor or the type."""
        require(actor, [BuiltinPermission.audit_read])
        return await self.events.search(
            user_id=user_id, actor_id=actor_id, event_type=event_type, limit=limit, cursor=cursor
        )
