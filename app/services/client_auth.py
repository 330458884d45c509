"""Authenticating service clients (RFC 6749 section 2.3.1): who is calling the token or
introspection endpoint with a client_id and secret."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ServiceClient
from app.repositories import ServiceClientRepository
from app.security.client_secrets import client_secret_digest, secret_matches
from app.services.audit import AuditEventType, AuditTrail
from app.services.client_info import ClientInfo
from app.services.errors import DomainError
from app.services.rate_limits import LimitName, RateLimiter
from app.services.unit_of_work import unit_of_work

# Compared against when the client_id is unknown, so unknown ids and wrong secrets take the
# same time and an attacker cannot learn which client_ids exist.
_UNKNOWN_CLIENT_DIGEST = client_secret_digest("no client has this secret")
CLIENT_ID_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


class InvalidClient(DomainError):
    """Unknown client, wrong secret, disabled client or no credentials: indistinguishable."""

    default_detail = "Client authentication failed."


class ClientAuthenticator:
    def __init__(self, session: AsyncSession, limiter: RateLimiter) -> None:
        self.session = session
        self.clients = ServiceClientRepository(session)
        self.limiter = limiter
        self.audit = AuditTrail(session)

    async def authenticate(
        self, credentials: ClientCredentials | None, client: ClientInfo
    ) -> ServiceClient:
        """The active client these credentials belong to, or `InvalidClient`.

        Failures count against the caller's IP like failed sign-ins, so secrets cannot be
        guessed faster than passwords.
        """
        if credentials is None:
            raise InvalidClient("Client authentication is required.")
        await self.limiter.ensure_allowed(LimitName.login_ip, client.ip)
        found = None
        if len(credentials.client_id) <= CLIENT_ID_MAX_LENGTH:
            found = await self.clients.get_by_client_id(credentials.client_id)
        digest = found.secret_hash if found is not None else _UNKNOWN_CLIENT_DIGEST
        matches = secret_matches(digest, credentials.client_secret)
        if found is None or not matches or not found.is_active:
            await self.limiter.hit(LimitName.login_ip, client.ip)
            async with unit_of_work(self.session):
                await self.audit.record(
                    AuditEventType.client_authentication_failed,
                    client=client,
                    client_id=credentials.client_id[:CLIENT_ID_MAX_LENGTH],
                    known=found is not None,
                )
            raise InvalidClient
        return found
