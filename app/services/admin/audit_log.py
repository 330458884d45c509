"""The audit trail as administrators see it: reading it, and recording refused admin calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import RateLimited
from app.models import AuditEvent
from app.repositories import AuditEventRepository, Page
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.authorization import Actor, BuiltinPermission, require
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.rate_limits import LimitName
from app.services.common.unit_of_work import unit_of_work


class DenialReason(StrEnum):
    no_token = "no_token"
    invalid_token = "invalid_token"
    missing_permission = "missing_permission"


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

    async def record_access_denied(
        self,
        reason: DenialReason,
        *,
        method: str,
        route: str,
        caller: Caller,
        actor: Actor | None = None,
        required: Iterable[str] = (),
    ) -> bool:
        """Record an `access.denied` event for a refused call to an admin route, naming the
        caller when known (`actor`) and what they lacked; True if it was recorded.

        Anyone can send refused requests, as fast as they like: only
        `AUTH_AUDIT_ACCESS_DENIED_IP` of them per caller IP, and `..._TOTAL` from all IPs, are
        written, so a flood can neither fill the table nor keep the database busy. The excess
        is counted in `authsvc_throttled_total`.
        """
        if not await self._within_audit_budget(caller):
            return False
        details: dict[str, Any] = {"reason": reason.value, "method": method, "route": route}
        if actor is not None and actor.client_id is not None:
            details.update(via="client", actor_client_id=actor.client_id)
        if actor is not None and reason is DenialReason.missing_permission:
            details["missing"] = sorted(actor.lacks(required))
        async with unit_of_work(self.session):
            await AuditTrail(self.session).record(
                AuditEventType.access_denied,
                caller=caller,
                actor_id=actor.id if actor is not None else None,
                **details,
            )
        return True

    async def _within_audit_budget(self, caller: Caller) -> bool:
        try:
            # Per IP first: one noisy address must not spend the budget everyone shares.
            await self.limiter.reserve(
                (LimitName.audit_access_denied_ip, caller.ip or "unknown"),
                (LimitName.audit_access_denied_total, "all"),
            )
        except RateLimited:
            return False
        return True
