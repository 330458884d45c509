"""Sign-up: a new, unverified account."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import user_conflict
from app.identifiers import normalize_email, normalize_username
from app.models import User
from app.repositories import UserRepository
from app.repositories.common.base import UniqueViolation
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.rate_limits import LimitName
from app.services.common.unit_of_work import unit_of_work


class RegistrationService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.users = UserRepository(session)
        self.audit = AuditTrail(session)

    async def register(
        self,
        *,
        email: str,
        password: str,
        username: str | None,
        full_name: str | None,
        caller: Caller,
    ) -> User:
        """Create an unverified account. The unique indexes, not a prior lookup, decide."""
        await self.limiter.consume(LimitName.register_ip, caller.ip)
        email = normalize_email(email)
        username = normalize_username(username) if username else None
        self.policy.check(password, email=email, username=username)
        hashed = await self.hasher.hash(password)
        try:
            async with unit_of_work(self.session):
                user = await self.users.create(
                    email=email, username=username, full_name=full_name, hashed_password=hashed
                )
                await self.audit.record(
                    AuditEventType.user_registered, caller=caller, user_id=user.id
                )
        except UniqueViolation as violation:
            raise user_conflict(violation.field) from None
        return user
