"""Sign-out: ending one sign-in session, or all of a user's at once."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories import UserRepository
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work
from app.services.tokens.sign_in_sessions import SignInSessions


class SignOutService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.users = UserRepository(session)
        self.sessions = SignInSessions(session, context.settings)
        self.audit = AuditTrail(session)

    async def logout(self, *, user_id: uuid.UUID, session_id: uuid.UUID, caller: Caller) -> None:
        """End the caller's current session (its refresh tokens and access tokens)."""

        async def end_session() -> None:
            await self.sessions.end(session_id, self.clock(), "logout")
            await self.audit.record(
                AuditEventType.logout,
                caller=caller,
                user_id=user_id,
                actor_id=user_id,
                session_id=str(session_id),
            )

        await run_unit_of_work(self.session, end_session)

    async def logout_all(self, *, user_id: uuid.UUID, caller: Caller) -> None:
        """End every session of the user and invalidate all their access tokens at once."""

        async def end_all_sessions() -> None:
            user = await self.users.get_by_id(user_id)
            if user is None:
                return
            ended = await self.sessions.end_all(user_id, self.clock(), "logout_all")
            user.token_version += 1
            await self.audit.record(
                AuditEventType.logout_all,
                caller=caller,
                user_id=user_id,
                actor_id=user_id,
                sessions_ended=ended,
            )

        await run_unit_of_work(self.session, end_all_sessions)
