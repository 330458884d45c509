"""The security audit trail: services record events inside their own transaction."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.repositories import AuditEventRepository
from app.services.client_info import ClientInfo


class AuditEventType(StrEnum):
    user_registered = "user.registered"
    login_succeeded = "login.succeeded"
    login_failed = "login.failed"
    logout = "logout"
    logout_all = "logout.all"
    session_ended = "session.ended"
    token_revoked = "token.revoked"
    refresh_token_reused = "refresh_token.reused"
    password_changed = "password.changed"
    password_reset_requested = "password.reset_requested"
    password_reset = "password.reset"
    email_verified = "email.verified"
    email_changed = "email.changed"
    profile_updated = "profile.updated"


class AuditTrail:
    """Appends audit events through the caller's session; the caller's commit keeps them."""

    def __init__(self, session: AsyncSession) -> None:
        self.events = AuditEventRepository(session)

    async def record(
        self,
        event_type: AuditEventType,
        *,
        client: ClientInfo | None = None,
        user_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        **details: Any,
    ) -> AuditEvent:
        client = client or ClientInfo()
        return await self.events.create(
            type=event_type.value,
            user_id=user_id,
            actor_id=actor_id if actor_id is not None else user_id,
            ip=client.ip,
            user_agent=client.user_agent_truncated,
            details=details,
        )
