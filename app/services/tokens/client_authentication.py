"""Authenticating service clients (RFC 6749 section 2.3.1): who is calling the token or
introspection endpoint with a client_id and secret, or, for the grants open to public
first-party clients, which public client names itself."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import CLIENT_ID_MAX_LENGTH, Settings
from app.errors import DomainError
from app.repositories.accounts.credential_checks import stored_client_credentials
from app.security.client_secrets import client_secret_digest, secret_matches
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.rate_limits import LimitName, RateLimiter

# Compared against when the client_id is unknown, so unknown ids and wrong secrets take the
# same time and an attacker cannot learn which client_ids exist.
_UNKNOWN_CLIENT_DIGEST = client_secret_digest("no client has this secret")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class ClaimedClient:
    """Who a request to the token or revocation endpoint says it comes from: `credentials`
    (HTTP Basic or the form), else a bare `client_id` (a public client), else nobody."""

    credentials: ClientCredentials | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class IdentifiedClient:
    """The client a grant or revocation is for: a public first-party client (named, or the
    default one when the request names none) or a service client that authenticated."""

    client_id: str
    is_public: bool


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """A service client whose credentials were just checked."""

    client_id: str
    scopes: list[str]
    audiences: list[str]


class InvalidClient(DomainError):
    """Unknown client, wrong secret, disabled client or no credentials: indistinguishable.

    When presented credentials were checked and failed, `failed_client_id` names the client
    they claimed (truncated) and `is_known_client` whether it exists: the use case that asked
    records that in the audit trail (`ClientAuthenticator.record_failure`) and commits it.
    """

    default_detail = "Client authentication failed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        failed_client_id: str | None = None,
        is_known_client: bool = False,
    ) -> None:
        super().__init__(detail)
        self.failed_client_id = failed_client_id
        self.is_known_client = is_known_client


class UnauthorizedClient(DomainError):
    """An authenticated client asked for a grant it may not use (RFC 6749 section 5.2)."""

    default_detail = "This client may not use this grant type."


class ClientAuthenticator:
    """Checks client credentials; never commits. A use case that calls `authenticate` or
    `identify` audits an `InvalidClient` with `record_failure` in its own unit of work."""

    def __init__(self, session: AsyncSession, limiter: RateLimiter) -> None:
        self.session = session
        self.limiter = limiter
        self.audit = AuditTrail(session)

    async def authenticate(
        self,
        credentials: ClientCredentials | None,
        caller: Caller,
        *,
        connection: AsyncConnection | None = None,
    ) -> AuthenticatedClient:
        """The active client these credentials belong to, or `InvalidClient`.

        Reads through `connection` when given (a caller with its own Core connection saves a
        checkout), else through the session. Failures count against the caller's IP like
        failed sign-ins, so secrets cannot be guessed faster than passwords; the caller
        audits them (`record_failure`).
        """
        if credentials is None:
            raise InvalidClient("Client authentication is required.")
        attempt = await self.limiter.reserve((LimitName.login_ip, caller.ip))
        found = None
        if len(credentials.client_id) <= CLIENT_ID_MAX_LENGTH:
            connection = connection or await self.session.connection()
            found = await stored_client_credentials(connection, credentials.client_id)
        digest = found.secret_hash if found is not None else _UNKNOWN_CLIENT_DIGEST
        matches = secret_matches(digest, credentials.client_secret)
        if found is None or not matches or not found.is_active:
            # The slot stays taken: failures count against the caller's IP.
            raise InvalidClient(
                failed_client_id=credentials.client_id[:CLIENT_ID_MAX_LENGTH],
                is_known_client=found is not None,
            )
        await attempt.release()
        return AuthenticatedClient(found.client_id, found.scopes, found.audiences)

    async def record_failure(self, failure: InvalidClient, caller: Caller) -> None:
        """Add the audit event a failed client authentication leaves (none when no presented
        credentials were checked). Flushes only: the calling use case commits it."""
        if failure.failed_client_id is None:
            return
        await self.audit.record(
            AuditEventType.client_authentication_failed,
            caller=caller,
            client_id=failure.failed_client_id,
            known=failure.is_known_client,
        )

    async def identify(
        self, claimed: ClaimedClient, caller: Caller, settings: Settings
    ) -> IdentifiedClient:
        """The client behind a request to a grant open to public clients, or `InvalidClient`.

        Credentials, when presented, must be a service client's and right (failures count
        as in `authenticate`). Without them, a `client_id` must name a public client: a
        service client must prove who it is, and an unknown id is nobody. A request naming
        no client is the default first-party client, as the operator's frontends send.
        """
        credentials = claimed.credentials
        if credentials is not None:
            if not credentials.client_secret and credentials.client_id in settings.public_clients:
                # A public client has no secret to present; some clients (Swagger UI's
                # Authorize) still send HTTP Basic with an empty one.
                return IdentifiedClient(credentials.client_id, is_public=True)
            authenticated = await self.authenticate(credentials, caller)
            return IdentifiedClient(authenticated.client_id, is_public=False)
        if claimed.client_id is None:
            return IdentifiedClient(settings.first_party_client_id, is_public=True)
        if claimed.client_id in settings.public_clients:
            return IdentifiedClient(claimed.client_id, is_public=True)
        # One answer for service clients without their secret and for unknown ids.
        raise InvalidClient("This client_id is not a public client; authenticate the client.")
