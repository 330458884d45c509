"""Authenticating clients (RFC 6749 section 2.3.1): which registered client is calling the
token or introspection endpoint with a client_id and secret, or, for the grants open to public
clients, which public client names itself (one of `AUTH_PUBLIC_CLIENTS`, or a registered client
whose `token_endpoint_auth_method` is `none`).

A confidential client's secret is accepted from HTTP Basic (`client_secret_basic`) or the form
(`client_secret_post`) whichever method it was registered with: the secret is the proof, the
registered method says how its libraries will send it. Every client registered before the
methods existed is `client_secret_basic`, and many of them send the form."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import CLIENT_ID_MAX_LENGTH, Settings
from app.errors import DomainError
from app.repositories.accounts.credential_checks import stored_client_credentials
from app.security.client_secrets import client_secret_digest, secret_matches
from app.services.admin.client_registration import GrantType, TokenEndpointAuthMethod
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.caller import Caller
from app.services.common.rate_limits import LimitName, RateLimiter

# Compared against when the client_id is unknown, so unknown ids and wrong secrets take the
# same time and an attacker cannot learn which client_ids exist.
_UNKNOWN_CLIENT_DIGEST = client_secret_digest("no client has this secret")

# What the configured public first-party clients (AUTH_PUBLIC_CLIENTS) may do: sign users in
# with a password (and its second step) and refresh.
CONFIGURED_PUBLIC_GRANTS = frozenset({GrantType.password, GrantType.refresh_token})


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
    """The client a grant or revocation is for: a configured public first-party client (named,
    or the default one when the request names none), a registered public client named by its
    client_id, or a registered confidential client that authenticated."""

    client_id: str
    is_public: bool
    grant_types: frozenset[str]
    is_first_party: bool

    @classmethod
    def configured(cls, client_id: str) -> IdentifiedClient:
        """One of the public first-party clients of AUTH_PUBLIC_CLIENTS."""
        return cls(
            client_id, is_public=True, grant_types=CONFIGURED_PUBLIC_GRANTS, is_first_party=True
        )

    def may_use(self, grant_type: GrantType) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """A registered confidential client whose credentials were just checked."""

    client_id: str
    scopes: list[str]
    audiences: list[str]
    grant_types: frozenset[str]
    is_first_party: bool

    def may_use(self, grant_type: GrantType) -> bool:
        return grant_type in self.grant_types


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
        """The active confidential client these credentials belong to, or `InvalidClient` (a
        public client has no secret: any secret presented for it is wrong).

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
        stored_digest = found.secret_hash if found is not None else None
        # The same work whether or not there is a digest to compare with.
        matches = secret_matches(stored_digest or _UNKNOWN_CLIENT_DIGEST, credentials.client_secret)
        if found is None or stored_digest is None or not matches or not found.is_active:
            # The slot stays taken: failures count against the caller's IP.
            raise InvalidClient(
                failed_client_id=credentials.client_id[:CLIENT_ID_MAX_LENGTH],
                is_known_client=found is not None,
            )
        await attempt.release()
        return AuthenticatedClient(
            found.client_id,
            found.scopes,
            found.audiences,
            grant_types=frozenset(found.grant_types),
            is_first_party=found.is_first_party,
        )

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

        Credentials, when presented, must be a confidential client's and right (failures
        count as in `authenticate`). Without them, a `client_id` must name a public client
        (configured, or registered with `none` and active): a confidential client must prove
        who it is, and an unknown id is nobody. A request naming no client is the default
        first-party client, as the operator's frontends send.
        """
        credentials = claimed.credentials
        if credentials is not None and not credentials.client_secret:
            # A public client has no secret to present; some clients (Swagger UI's
            # Authorize) still send HTTP Basic with an empty one.
            public = await self._public_client(credentials.client_id, settings)
            if public is not None:
                return public
        if credentials is not None:
            authenticated = await self.authenticate(credentials, caller)
            return IdentifiedClient(
                authenticated.client_id,
                is_public=False,
                grant_types=authenticated.grant_types,
                is_first_party=authenticated.is_first_party,
            )
        if claimed.client_id is None:
            return IdentifiedClient.configured(settings.first_party_client_id)
        public = await self._public_client(claimed.client_id, settings)
        if public is not None:
            return public
        # One answer for confidential clients without their secret, disabled clients and
        # unknown ids.
        raise InvalidClient("This client_id is not a public client; authenticate the client.")

    async def _public_client(self, client_id: str, settings: Settings) -> IdentifiedClient | None:
        """The public client `client_id` names, if it is one: configured in
        AUTH_PUBLIC_CLIENTS, or registered without a secret and active."""
        if client_id in settings.public_clients:
            return IdentifiedClient.configured(client_id)
        if len(client_id) > CLIENT_ID_MAX_LENGTH:
            return None
        found = await stored_client_credentials(await self.session.connection(), client_id)
        if (
            found is None
            or not found.is_active
            or found.token_endpoint_auth_method != TokenEndpointAuthMethod.none
        ):
            return None
        return IdentifiedClient(
            found.client_id,
            is_public=True,
            grant_types=frozenset(found.grant_types),
            is_first_party=found.is_first_party,
        )
