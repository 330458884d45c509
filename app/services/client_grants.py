"""The client-credentials grant (RFC 6749 section 4.4): service clients get their own tokens."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError
from app.observability.metrics import current_metrics
from app.repositories import PermissionRepository
from app.services.client_auth import ClientAuthenticator, ClientCredentials, InvalidClient
from app.services.client_info import ClientInfo
from app.services.clients import SERVICE_SCOPES
from app.services.context import Service, ServiceContext
from app.services.token_issuer import TokenIssuer, TokenResponse
from app.services.unit_of_work import unit_of_work


class InvalidScope(DomainError):
    default_detail = "The requested scope exceeds the scopes this client may have."


class ClientGrantService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext, *, issuer: TokenIssuer):
        super().__init__(session, context)
        self.issuer = issuer
        self.authenticator = ClientAuthenticator(session, context.limiter)
        self.permissions = PermissionRepository(session)

    async def client_credentials_grant(
        self, credentials: ClientCredentials | None, *, scope: str | None, client: ClientInfo
    ) -> TokenResponse:
        """An access token for the authenticated client. Without `scope` it gets every scope
        it is allowed; asking for more than that is `InvalidScope`, not a silent narrowing."""
        try:
            service_client = await self.authenticator.authenticate(credentials, client)
        except InvalidClient as failure:
            async with unit_of_work(self.session):
                await self.authenticator.record_failure(failure, client)
            raise
        # A permission deleted since the client was registered is no longer grantable.
        existing = await self.permissions.all_codenames() | set(SERVICE_SCOPES)
        allowed = set(service_client.scopes) & existing
        requested = set(scope.split()) if scope else allowed
        if not requested <= allowed:
            raise InvalidScope(
                f"Not allowed for this client: {' '.join(sorted(requested - allowed))}."
            )
        current_metrics().token_issued("client_credentials")
        return self.issuer.for_client(service_client, " ".join(sorted(requested)))
