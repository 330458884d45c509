"""What the signed-in user granted third-party clients, and taking it back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.repositories import ServiceClientRepository, SignInSessionRepository
from app.services.authorization.client_grants import ClientGrants
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import run_unit_of_work


class GrantNotFound(NotFound):
    default_detail = "You have granted this client nothing."


@dataclass(frozen=True, slots=True)
class UserGrant:
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


class UserGrantsService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.grants = ClientGrants(session)
        self.clients = ServiceClientRepository(session)
        self.sessions = SignInSessionRepository(session)
        self.audit = AuditTrail(session)

    async def list_for(self, user_id: uuid.UUID) -> list[UserGrant]:
        """The user's grants, one per client, the most recent first."""
        grants = await self.grants.list_for_user(user_id)
        names = {
            client.client_id: client.name
            for client in await self.clients.list_by(
                self.clients.model.client_id.in_([grant.client_id for grant in grants])
            )
        }
        listed = [
            UserGrant(
                client_id=grant.client_id,
                client_name=names.get(grant.client_id, grant.client_id),
                scopes=grant.scope.split(),
                granted_at=grant.created_at,
                updated_at=grant.updated_at,
            )
            for grant in grants
        ]
        return sorted(listed, key=lambda grant: grant.updated_at, reverse=True)

    async def revoke(self, user_id: uuid.UUID, client_id: str, caller: Caller) -> None:
        """Forget the grant and end every session the user has with that client (its refresh
        tokens and access tokens stop working); `GrantNotFound` when there is none. The next
        sign-in to that client asks for consent again."""

        async def revoke_grant() -> None:
            if not await self.grants.forget(user_id, client_id):
                raise GrantNotFound
            ended = await self.sessions.revoke_for_client(
                user_id, client_id, self.clock(), "grant_revoked"
            )
            await self.audit.record(
                AuditEventType.client_grant_revoked,
                caller=caller,
                user_id=user_id,
                actor_id=user_id,
                client_id=client_id,
                sessions_ended=ended,
            )

        await run_unit_of_work(self.session, revoke_grant)
